"""The stylesheet and the script of the static site, inlined into ``index.html`` (no CDN, no network).

The script only shows and hides tab panels and reorders table rows that are already in the page; it never
builds markup from data (no ``innerHTML``), so the escaping done when the page is written is all there is.
The page's Content-Security-Policy allows exactly these two blocks (by their SHA-256) and nothing else.
"""

STYLE = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --accent: #2456c9; --bar: #9db4e8; --bg: #fff; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg);
       margin: 0 auto; padding: 1.5rem; max-width: 1400px; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; } h2 { font-size: 1.2rem; } h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
p.lead, p.method, .note { color: var(--muted); max-width: 75em; }
nav.tabs { display: flex; flex-wrap: wrap; gap: .25rem; border-bottom: 1px solid var(--line); margin: 1rem 0; }
nav.tabs button { border: 1px solid var(--line); border-bottom: none; background: #f4f6fa; padding: .45rem .8rem;
                  cursor: pointer; border-radius: 6px 6px 0 0; font: inherit; color: var(--fg); }
nav.tabs button[aria-selected="true"] { background: var(--bg); color: var(--accent); font-weight: 600;
                                         position: relative; top: 1px; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border-bottom: 1px solid var(--line); padding: .35rem .55rem; text-align: left; vertical-align: middle; }
th[data-sort] { cursor: pointer; user-select: none; white-space: nowrap; }
th[data-sort]::after { content: " \\2195"; color: #aab; }
th[aria-sort="ascending"]::after { content: " \\2191"; color: var(--accent); }
th[aria-sort="descending"]::after { content: " \\2193"; color: var(--accent); }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.metric .value { display: inline-block; min-width: 4.2em; }
td.metric .interval { color: var(--muted); font-size: .85em; }
svg.ci { vertical-align: middle; margin: 0 .3rem; }
svg.ci .range { fill: var(--bar); } svg.ci .point { stroke: var(--accent); stroke-width: 2; }
svg.ci .axis { stroke: var(--line); }
.na { color: var(--muted); font-style: italic; }
.rank { font-weight: 600; }
details { margin: .5rem 0 1rem; } summary { cursor: pointer; color: var(--accent); }
.plots { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
.plot h4 { margin: .3rem 0; font-size: .9rem; }
svg.chart text { font: 11px system-ui, sans-serif; fill: var(--fg); }
svg.chart .bar { fill: var(--bar); } svg.chart .whisker { stroke: var(--accent); stroke-width: 1.5; }
svg.chart .cell-text { text-anchor: middle; dominant-baseline: central; }
ul.reasons li { margin: .2rem 0; }
.provenance { display: inline-block; font-size: .75rem; padding: 0 .4rem; border-radius: 3px; background: #e7f0e3;
              color: #2c5a1e; } .provenance.reported { background: #f6ecd9; color: #7a4b00; }
code { background: #f4f6fa; padding: 0 .2rem; border-radius: 3px; }
footer { margin-top: 2rem; color: var(--muted); font-size: .85rem; }
"""

SCRIPT = """
(function () {
  "use strict";
  var tabs = Array.prototype.slice.call(document.querySelectorAll("nav.tabs [role=tab]"));
  function show(id) {
    tabs.forEach(function (tab) {
      var on = tab.getAttribute("data-panel") === id;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      document.getElementById(tab.getAttribute("data-panel")).hidden = !on;
    });
  }
  tabs.forEach(function (tab) {
    tab.addEventListener("click", function () { show(tab.getAttribute("data-panel")); });
  });
  var wanted = window.location.hash.slice(1);
  if (wanted && tabs.some(function (t) { return t.getAttribute("data-panel") === wanted; })) { show(wanted); }

  function key(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell ? cell.getAttribute("data-value") : null;
    if (raw === null || raw === "") { return null; }
    return numeric ? parseFloat(raw) : raw;
  }
  function sortBy(header) {
    var table = header.closest("table");
    var body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(header.parentNode.children, header);
    var numeric = header.getAttribute("data-sort") === "number";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(header.parentNode.children, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, index, numeric), y = key(b, index, numeric);
      if (x === null || y === null) { return x === null ? (y === null ? 0 : 1) : -1; }
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable th[data-sort]"), function (th) {
    th.addEventListener("click", function () { sortBy(th); });
  });
})();
"""

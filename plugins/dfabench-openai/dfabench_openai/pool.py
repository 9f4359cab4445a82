"""Several servers behind one ``openai`` model: the endpoint pool.

``base_url`` may name several OpenAI-compatible servers (vLLM / SGLang replicas, one per GPU or node):
comma-separated on the command line (``base_url=http://a:8000/v1,http://b:8000/v1``) or a list from
Python / YAML. Each is a pool member with its own HTTP client and at most ``concurrency`` requests in
flight. :class:`EndpointPool` keeps their state on the model's event loop (no locks: one thread):

- a request goes to the *up* endpoint with the fewest requests in flight (ties: the one sent fewer);
- a request that fails on one endpoint (connection error, timeout, 5xx, malformed reply) is retried on
  another up one at once; the failed attempt gave no usage, so nothing is counted twice;
- an endpoint that cannot be connected to at all, or fails :data:`DOWN_AFTER` times in a row, is *down*
  for a cool-off (``cooloff`` seconds, doubled after each failed re-probe up to :data:`MAX_COOLOFF`);
  it is then re-probed (``GET /models``, which must still list the model, from the same weights) before
  it gets requests again; an endpoint that serves another model or refuses the key is *refused* for the run;
- when every endpoint is down, requests wait for the re-probes within their retry budget, then fail with one
  line (a failure, never an answer); the run goes on by the runner's rules.

Every change of state is one line on stderr; :meth:`EndpointPool.summary` is the closing report. URLs are
shown by :func:`public_url` (no user info, query or fragment) and pass :func:`dfabench.redact.redact`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dfabench.api import DfabenchError, redact

#: consecutive failed requests (timeouts, 5xx, broken replies) after which an endpoint is taken down
DOWN_AFTER = 3
#: the longest cool-off between two re-probes of a down endpoint (seconds)
MAX_COOLOFF = 300.0
#: the longest a re-probe waits for ``GET /models`` (seconds)
PROBE_TIMEOUT = 10.0


def public_url(url: str) -> str:
    """``scheme://host[:port]/path``: the URL without user info, query or fragment (what may be shown)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return redact(f"{parts.scheme}://{host}{parts.path.rstrip('/')}")


def split_base_urls(value: Any, default: str) -> tuple[list[str], bool]:
    """``base_url`` as given -> (the URLs, whether it names a pool).

    A list (from Python or YAML, or JSON on the command line) or a comma-separated string is a pool,
    even of one URL (``http://a:8000/v1,``: the pool identity, see the README); a plain URL is one
    endpoint as always. ``None`` or ``""``: ``default`` (``$OPENAI_BASE_URL`` or OpenAI's)."""
    if value is None or value == "":
        value = default
    if isinstance(value, (list, tuple)):
        items, pooled = list(value), True
    elif isinstance(value, str):
        items, pooled = value.split(","), "," in value
    else:
        raise DfabenchError(f"openai: base_url must be a URL or a list of URLs, not {type(value).__name__}")
    urls: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise DfabenchError(f"openai: base_url must list URLs, not {type(item).__name__} {redact(item)!r}")
        url = item.strip().rstrip("/")
        if not url:
            continue
        if urlsplit(url).scheme not in ("http", "https"):
            raise DfabenchError(f"openai: base_url must be an http(s) URL, not {redact(url)!r}")
        if url in urls:
            raise DfabenchError(f"openai: base_url names {public_url(url)} twice")
        urls.append(url)
    if not urls:
        raise DfabenchError("openai: base_url names no URL")
    return urls, pooled


def connect_failure(exc: BaseException) -> str | None:
    """Why no connection could be made (refused, unknown host, unreachable), or None when ``exc`` is not that
    (a reply cut off, a timeout after connecting): walks the exception's causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    found = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names = {cls.__name__ for cls in type(current).__mro__}
        if "ConnectError" in names or isinstance(current, (ConnectionRefusedError, ConnectionAbortedError)):
            found = found or "cannot connect"
        if isinstance(current, OSError) and (current.strerror or str(current)):
            found = str(current.strerror or current).lower()
        current = current.__cause__ or current.__context__
    return found


@dataclass(eq=False)
class Endpoint:
    """One server of the pool and what the client knows of it (touched on the event loop only)."""

    url: str
    label: str
    client: Any = None
    #: up | down | refused
    state: str = "up"
    reason: str | None = None
    outstanding: int = 0
    sent: int = 0
    answered: int = 0
    failed: int = 0
    consecutive: int = 0
    down_until: float = 0.0
    cooloff: float = 10.0
    #: what ``GET /models`` says of the model: {"id", "root"}; {} when it says nothing (no /models)
    listed: dict[str, Any] | None = None
    probing: asyncio.Task | None = None
    was_down: bool = False


Health = Callable[[Endpoint], Awaitable[tuple[str, dict[str, Any], str | None]]]


class EndpointPool:
    """The endpoints of one model (see the module docstring). ``health(endpoint)`` returns ``(state, listed,
    reason)`` with state ``up``, ``down`` (unreachable or failing) or ``refused``; ``takes_down``: whether failing
    endpoints are taken down (only when there is another to go to)."""

    def __init__(self, endpoints: list[Endpoint], concurrency: int, cooloff: float, health: Health,
                 takes_down: bool, stream=None):
        self.endpoints = endpoints
        self.concurrency = concurrency
        self.base_cooloff = cooloff
        self.health = health
        self.takes_down = takes_down
        self.stream = stream
        self.reference: dict[str, Any] | None = None  # the listing the run's identity came from
        self.dead = False  # a request gave up with every endpoint down, and none came back since
        self._changed = asyncio.Condition()
        for endpoint in endpoints:
            endpoint.cooloff = cooloff

    # -- reporting ---------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        print(f"openai: {redact(text)}", file=self.stream or sys.stderr, flush=True)

    def describe(self, endpoints: list[Endpoint] | None = None) -> str:
        return "; ".join(f"{e.label}: {e.reason or e.state}" for e in (endpoints or self.endpoints))

    def up(self) -> list[Endpoint]:
        return [e for e in self.endpoints if e.state == "up"]

    def all_down_reason(self) -> str:
        n = len(self.endpoints)
        return f"no endpoint is up: all {n} endpoints are down ({self.describe()})"

    def summary(self) -> str:
        """Which endpoints answered how many requests, and which are down or refused (the closing report)."""
        parts = []
        for e in self.endpoints:
            text = f"{e.label} answered {e.answered}" + (f", {e.failed} failed attempts" if e.failed else "")
            if e.state != "up":
                text += f" ({e.state}: {e.reason})"
            parts.append(text)
        return f"{len(self.endpoints)} endpoints: " + "; ".join(parts)

    # -- state changes (event loop) ----------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def apply(self, endpoint: Endpoint, state: str, listed: dict[str, Any], reason: str | None,
              report: bool = True) -> None:
        """Record a health check's outcome (``down`` starts a cool-off; ``refused`` is for the run); a change
        for the worse is one line on stderr when ``report``."""
        loop = asyncio.get_running_loop()
        if state == "up" and self.reference is not None and listed and self.reference.get("root") \
                and listed.get("root") and listed["root"] != self.reference["root"]:
            state, reason = "refused", (f"serves {listed.get('id')!r} from other weights ({listed['root']!r}, "
                                        f"not {self.reference['root']!r})")
        before = endpoint.state
        endpoint.listed = listed if state == "up" else endpoint.listed
        if state == "up":
            endpoint.state, endpoint.reason, endpoint.consecutive = "up", None, 0
            endpoint.cooloff = self.base_cooloff
            self.dead = False
            if endpoint.was_down and report:
                self.say(f"{endpoint.label} is up again; {len(self.up())} of {len(self.endpoints)} endpoints up")
            endpoint.was_down = False
        elif state == "down":
            endpoint.state, endpoint.reason = "down", reason
            endpoint.down_until = loop.time() + endpoint.cooloff
            endpoint.cooloff = min(MAX_COOLOFF, endpoint.cooloff * 2)
        else:
            endpoint.state, endpoint.reason = "refused", reason
        endpoint.was_down = endpoint.was_down or state == "down"
        if before == "up" and state != "up" and report:
            self._report_loss(endpoint)

    def _report_loss(self, endpoint: Endpoint) -> None:
        left = len(self.up())
        if endpoint.state == "refused":
            what = f"{endpoint.label} is refused for the rest of the run ({endpoint.reason})"
        else:
            wait = endpoint.down_until - asyncio.get_running_loop().time()
            what = f"{endpoint.label} is down ({endpoint.reason}; re-probed in {wait:.3g} s)"
        if left:
            self.say(f"{what}; going on with {left} of {len(self.endpoints)}")
        else:
            self.say(f"{what}; all {len(self.endpoints)} endpoints are down: their samples fail until one answers "
                     "a re-probe")

    def succeeded(self, endpoint: Endpoint) -> None:
        endpoint.answered += 1
        endpoint.consecutive = 0

    def failed(self, endpoint: Endpoint, reason: str, definitive: bool) -> None:
        """A request failed on ``endpoint`` for a reason of the endpoint's (``definitive``: no connection at all)."""
        endpoint.failed += 1
        endpoint.consecutive += 1
        if self.takes_down and endpoint.state == "up" and (definitive or endpoint.consecutive >= DOWN_AFTER):
            self.apply(endpoint, "down", {}, reason)

    async def check(self, endpoints: list[Endpoint] | None = None, report: bool = False) -> None:
        """Health-check ``endpoints`` (default: all that are not refused) at once (quietly: the caller reports)."""
        chosen = [e for e in (endpoints or self.endpoints) if e.state != "refused"]
        results = await asyncio.gather(*(self.health(e) for e in chosen))
        for endpoint, (state, listed, reason) in zip(chosen, results, strict=True):
            self.apply(endpoint, state, listed, reason, report)
        await self._notify()

    def _start_reprobes(self) -> list[asyncio.Task]:
        """Re-probe every down endpoint whose cool-off is over (one probe each, shared); the probes in flight."""
        now = asyncio.get_running_loop().time()
        for endpoint in self.endpoints:
            if endpoint.state == "down" and endpoint.probing is None and endpoint.down_until <= now:
                endpoint.probing = asyncio.ensure_future(self._reprobe(endpoint))
        return [e.probing for e in self.endpoints if e.probing is not None]

    async def _reprobe(self, endpoint: Endpoint) -> None:
        try:
            state, listed, reason = await self.health(endpoint)
            self.apply(endpoint, state, listed, reason)
        finally:
            endpoint.probing = None
        await self._notify()

    # -- requests ----------------------------------------------------------------------------------

    async def acquire(self, avoid: set[Endpoint]) -> Endpoint | None:
        """The endpoint for the next attempt (its slot taken), or None when none is up. Prefers endpoints not
        in ``avoid`` (those the request already failed on); waits while every one is at ``concurrency``."""
        async with self._changed:
            while True:
                self._start_reprobes()
                up = self.up()
                if not up:
                    return None
                preferred = [e for e in up if e not in avoid] or up
                free = [e for e in preferred if e.outstanding < self.concurrency]
                if free:
                    chosen = min(free, key=lambda e: (e.outstanding, e.sent))
                    chosen.outstanding += 1
                    chosen.sent += 1
                    return chosen
                await self._changed.wait()

    async def release(self, endpoint: Endpoint) -> None:
        endpoint.outstanding -= 1
        await self._notify()

    def another_up(self, avoid: set[Endpoint]) -> bool:
        return any(e not in avoid for e in self.up())

    async def wait_for_endpoint(self, wait: float) -> None:
        """No endpoint is up: wait up to ``wait`` seconds for a cool-off to end, then for the re-probes."""
        loop = asyncio.get_running_loop()
        pending = [e.down_until for e in self.endpoints if e.state == "down" and e.probing is None]
        if not self.dead and pending:
            await asyncio.sleep(max(0.0, min(wait, min(pending) - loop.time())))
        probes = self._start_reprobes()
        if probes:
            await asyncio.wait(probes, timeout=PROBE_TIMEOUT + 5.0)

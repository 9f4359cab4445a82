"""The tokenizer of the reference text metrics (:mod:`dfabench.metrics.text`): :func:`tokenize`.

Version :data:`TOKENIZER_VERSION` gives, in pure Python (no Java), what the COCO caption tools give: their
``PTBTokenizer`` runs Stanford CoreNLP 3.4.1's ``edu.stanford.nlp.process.PTBTokenizer -preserveLines
-lowerCase``, then drops the tokens in their ``PUNCTUATIONS`` list. This module is a port of that lexer's rules
(``PTBLexer.flex`` at CoreNLP tag v3.4.1, with its default options: PTB3 escaping, the traditional-treebank
state, assimilations split, untokenizable characters deleted), not an approximation of its output:

- JFlex semantics: at each position every rule is tried, the longest match wins (a rule's trailing context
  counts in its length, then is given back), ties go to the rule listed first; the lexer is ``%caseless``
  (literal strings ignore case, character classes do not);
- PTB3 normalisation as there: brackets become ``-LRB-`` ``-RRB-`` ``-LSB-`` ``-RSB-`` ``-LCB-`` ``-RCB-``, quotes
  LaTeX quotes, ``€`` ``$``, ``£`` ``#``, ``½`` ``1/2``, ``&amp;`` ``&``, dashes ``--``, ellipses ``...``, spaces inside
  a token (``3 1/2``, ``<a href="x">``) no-break spaces; then lower-case.

The COCO tools compare their upper-case bracket names with lower-cased tokens, so ``-lrb-`` and its kind are
*kept*; quotes, ``. , ; : ? ! - -- ...`` are removed. A caption is one line: line breaks are spaces (the COCO
wrapper does this for ``\\n``; other line separators would shift its lines). The Java tool reads on into the next
caption of its batch in two rare cases ("I." before a caption starting "The", "No." before one starting with a
digit); each caption is read alone here, as if the next one did not start so. Letters and digits are those of
Python's Unicode database (the jar's tables are older: only letters assigned since may differ).

Speed: a plain word is the WORD rule without trying the others, and the tokens of a whitespace-separated chunk
are cached with the little context the rules can read past it. A test compares this module with the Java tool
on a large generated corpus when Java is installed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["REMOVED_TOKENS", "TOKENIZER_VERSION", "tokenize"]

TOKENIZER_VERSION = "coco-ptb-py-2"

#: pycocoevalcap's PUNCTUATIONS (the bracket names never match: tokens are lower-cased by then)
_COCO_PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-",
                                "--", "...", ";"])
#: the tokens that are removed, as lower-cased output
REMOVED_TOKENS = frozenset(t for t in _COCO_PUNCTUATIONS if t.lower() == t)

_ASSIMILATIONS = re.compile(r"(?i:cannot|gonna|gotta|lemme|gimme|wanna)")
_LINE_BREAKS = str.maketrans({c: " " for c in "\r\n\u2028\u2029\x0b\x0c\x85"})


def _classes() -> dict[str, str]:
    """Java's character classes of the lexer, for the Basic Multilingual Plane (Java strings are UTF-16: a
    character above it is two surrogates, which no rule takes, so it is deleted — as here)."""
    import unicodedata

    letters, digits, upper = [], [], []
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        category = unicodedata.category(chr(code))
        (letters if category[0] == "L" else digits if category == "Nd" else []).append(code)
        if category == "Lu":
            upper.append(code)

    def ranges(codes: list[int]) -> str:
        out, start, prev = [], None, None
        for code in codes:
            if start is None:
                start = prev = code
            elif code == prev + 1:
                prev = code
            else:
                out.append((start, prev))
                start = prev = code
        if start is not None:
            out.append((start, prev))
        return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in out)

    extra = ("\u00AD\u0237-\u024F\u02C2-\u02C5\u02D2-\u02DF\u02E5-\u02FF\u0300-\u036F\u0370-\u037D\u0384\u0385\u03CF"
             "\u03F6\u03FC-\u03FF\u0483-\u0487\u04CF\u04F6-\u04FF\u0510-\u0525\u055A-\u055F\u0591-\u05BD\u05BF\u05C1"
             "\u05C2\u05C4\u05C5\u05C7\u0615-\u061A\u063B-\u063F\u064B-\u065E\u0670\u06D6-\u06EF\u06FA-\u06FF\u070F"
             "\u0711\u0730-\u074F\u0750-\u077F\u07A6-\u07B1\u07CA-\u07F5\u07FA\u0900-\u0903\u093C\u093E-\u094E"
             "\u0951-\u0955\u0962-\u0963\u0981-\u0983\u09BC-\u09C4\u09C7\u09C8\u09CB-\u09CD\u09D7\u09E2\u09E3"
             "\u0A01-\u0A03\u0A3C\u0A3E-\u0A4F\u0A81-\u0A83\u0ABC-\u0ACF\u0B82\u0BBE-\u0BC2\u0BC6-\u0BC8\u0BCA-\u0BCD"
             "\u0C01-\u0C03\u0C3E-\u0C56\u0D3E-\u0D44\u0D46-\u0D48\u0E30-\u0E3A\u0E47-\u0E4E\u0EB1-\u0EBC\u0EC8-\u0ECD")
    return {"L": ranges(letters), "LX": ranges(letters) + extra, "D": ranges(digits) + "\u07C0-\u07C9",
            "U": ranges(upper)}


_SPACE = "[ \t\u00A0\u2000-\u200A\u3000]"
_NEWLINE = "(?:\r\n?|\n|[\u2028\u2029\x0b\x0c\x85])"
_SPACENL = f"(?:{_SPACE}|{_NEWLINE})"
_SGML = (r"<(?:[!?][A-Za-z-][^>\r\n]*|[A-Za-z][A-Za-z0-9_:.-]*(?:[ ]+(?:[A-Za-z][A-Za-z0-9_:.-]*[ ]*=[ ]*"
         r"""(?:'[^']*'|"[^"]*")|[A-Za-z][A-Za-z0-9_:.-]*))*[ ]*/?|/[A-Za-z][A-Za-z0-9_:.-]*)[ ]*>""")
_APOS = "(?:['\u0092\u2019]|&(?i:apos);)"
_APOSETC = f"(?:{_APOS}|[`\u0091\u2018\u201B])"
_HYPHEN = "[-_\u058A\u2010\u2011]"
_INSENTP = "[,;:\u3001]"
_URL_END = r"""[^ \t\n\f\r"<>|.!?(){},-]"""
_URL_PATH = f"""(?:/[^ \\t\\n\\f\\r"<>|()]+{_URL_END})?"""
_ACRO_TAIL = r"(?i:canada|sino|korean|eu|japan|non)-(?i:u\.s)|(?i:u\.s\.-)(?i:u\.k|u\.s\.s\.r)"
_ABSTATE = ("(?i:ala|ariz|calif|colo|conn|ct|dak|fla|ga|ind|kans?|ky|md|mich|minn|mo|mont|neb|nev|okla|penn|tenn"
            "|va|vt|wisc?|wyo)|A(?i:z|rk)|D(?i:el)|I(?i:ll)|L(?i:a)|M(?i:ass|iss)|O(?i:re)|P(?i:a)|T(?i:ex)|W(?i:ash)")
_ABBREV1 = (r"(?:(?i:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|mon|tue|tues|wed|thu|thurs|fri)|" + _ABSTATE
            + r"|(?i:pp?t)[ye](?i:s)?|(?i:inc|cos?|corp|ltd|plc|rt|bancorp|bhd|assn|univ|intl|sys)"
            r"|(?i:tel|est|ext|sq|jr|sr|bros|(?:ed|ph)\.d|blvd|rd|esq|etc|al|seq|bldg))\.")
_ABTITLE = (r"(?i:mrs|mr|ms|drs?|profs?|sens?|reps?|attys?|lt|col|gen|messrs|govs?|adm|rev|maj|sgt|cpl|pvt|capt|ste?"
            r"|ave|pres|lieut|hon|brig|co?mdr|pfc|spc|supts?|det|mt|ft|adj|adv|asst|assoc|ens|insp|mlle|mme|msgr|sfc)"
            r"|M(?i:iss)")
_NOT_SENTENCE_FINAL = ("A(?i:bout|ccording|dditionally|fter|n|s|t)|A|B(?i:ut)|E(?i:arlier)|H(?i:e|er|ere|owever)"
                       "|I(?i:f|n|t)|L(?i:ast)|M(?i:any|ore|r\\.|s\\.)|N(?i:ow)|O(?i:nce|ne|ther|ur)"
                       "|S(?i:he|ince|o|ome|uch)|T(?i:hat|he|heir|hen|here|hese|hey|his)|W(?i:e|hen|hile|hat)"
                       "|Y(?i:et|ou)")
_MISCSYMBOL = ("[+%&~^|\\\\\u00A6\u00A7\u00A8\u00A9\u00AC\u00AE\u00AF\u00B0-\u00B3\u00B4-\u00BA\u00D7\u00F7\u0387"
               "\u05BE\u05C0\u05C3\u05C6\u05F3\u05F4\u0600-\u0603\u0606-\u060A\u060C\u0614\u061B\u061E\u066A\u066D"
               "\u0703-\u070D\u07F6\u07F7\u07F8\u0964\u0965\u0E4F\u1FBD\u2016\u2017\u2020-\u2023\u2030-\u2038\u203B"
               "\u203E-\u2042\u2044\u207A-\u207F\u208A-\u208E\u2100-\u214F\u2190-\u21FF\u2200-\u2BFF\u3012\u30FB"
               "\uFF01-\uFF0F\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65]")


def _quotes(probably_left: bool) -> Callable[[str], str]:
    """The lexer's ``latexQuotes``: ASCII quotes by the guess of the rule, curly ones by their direction."""
    single, double = ("`", "``") if probably_left else ("'", "''")

    def convert(token: str) -> str:
        token = re.sub(r"&apos;|'", single, token)
        token = re.sub(r'"|&quot;', double, token)
        token = re.sub("[\u0091\u2018\u201B\u2039]", "`", token)
        token = re.sub("[\u0092\u2019\u203A]", "'", token)
        token = re.sub("[\u0093\u201C\u00AB]", "``", token)
        return re.sub("[\u0094\u201D\u00BB]", "''", token)
    return convert


def _soft(token: str) -> str:
    return token.replace("\u00AD", "") or "-"


def _amp(token: str) -> str:
    return re.sub("(?i:&amp;)", "&", token)


def _parens(token: str) -> str:
    return token.replace("(", "-LRB-").replace(")", "-RRB-")


_CURRENCY = str.maketrans({"\u00A2": "cents", "\u00A3": "#", "\u0080": "$", "\u00A4": "$", "\u20A0": "$",
                           "\u20AC": "$"})
_FRACTIONS = str.maketrans({"\u00BC": "1/4", "\u00BD": "1/2", "\u00BE": "3/4", "\u2153": "1/3", "\u2154": "2/3"})
#: how a rule's text becomes a token: a function of the text, or one of these
_DROP, _AND_PERIOD, _ACRONYM = "drop", "and-period", "acronym"


def _rules() -> list[tuple[re.Pattern, object]]:
    """The lexer's rules in its order: (pattern, action). Group ``t``, where a pattern has it, is the token; the
    rest of the match is trailing context (it counts in the match length, then is scanned again)."""
    c = _classes()
    letter = f"(?:[{c['LX']}]|&[aeiouAEIOU](?i:acute|grave|uml);)"
    plain_letter, digit, upper = f"[{c['L']}]", f"[{c['D']}]", f"[{c['U']}]"
    word = f"{letter}(?:{letter}|{digit})*(?:[.!?]{letter}(?:{letter}|{digit})*)*"
    num = f"(?:{digit}*(?:[.:,\u00AD\u066B\u066C]{digit}+)+|{digit}+)"
    acro, acro2 = f"(?:[A-Za-z](?:\\.[A-Za-z])*|{_ACRO_TAIL})", f"(?:[A-Za-z](?:\\.[A-Za-z])+|{_ACRO_TAIL})"
    abbrev4 = (f"(?:{_ABTITLE}|(?i:vs|alex|wm|jos|cie|a\\.k\\.a|cf|treas|ph)|{acro}|(?i:invt|elec|natl|dept)"
               "|(?i:m)[ft](?i:g))")
    alnum = f"(?:{plain_letter}|{digit})"
    thing_part = f"(?:[dDoOlL]{_APOSETC}{alnum})?{alnum}+"
    thing = f"{thing_part}(?:{_HYPHEN}{thing_part})*"
    hthing = f"[A-Za-z0-9][A-Za-z0-9.,\u00AD]*(?:-(?:{acro2}\\.|[A-Za-z0-9\u00AD]+))+"
    thinga = r"[A-Z]+(?:(?:[+&]|&(?i:amp);)[A-Z]+)+"
    redaux = f"{_APOS}(?:[msdMSD]|(?i:re|ve|ll))"
    sredaux = f"(?i:n){_APOSETC}(?i:t)"
    extensions = ("bat|bmp|c|class|cgi|cpp|dll|doc|docx|exe|gif|gz|h|htm|html|jar|java|jpeg|jpg|mov|mp3|pdf|php|pl|png"
                  "|ppt|ps|py|sql|tar|txt|wav|x|xml|zip")
    filename = f"(?:{letter}|{digit})+(?:[.](?:{letter}|{digit})+)*(?:[.](?i:{extensions}))"
    not_alpha = "[^A-Za-z]"
    keep = None
    rules: list[tuple[str, object]] = [
        (r"(?i:c\+\+)|(?i:[cf])#", keep),
        ("(?P<t>(?i:can))(?i:not)", keep),
        ("(?P<t>(?i:'t))(?i:was)", keep),
        ("(?P<t>(?i:'t))(?i:is)", keep),
        *((f"(?P<t>(?i:{word[:3]})){word[3:]}", keep) for word in ("gonna", "gotta", "lemme", "gimme", "wanna")),
        (_SGML, lambda t: t.replace(" ", "\u00A0")),
        ("&(?i:md|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", lambda t: "--"),
        ("&(?i:amp);", lambda t: "&"),
        ("&(?i:ht|tl|ur|lr|qc|ql|qr|odq|cdq|#[0-9]+);", keep),
        (f"(?P<t>{word}){redaux}", _soft),
        (f"(?P<t>[A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*){sredaux}", _soft),
        (word, _soft),
        *((pattern, keep) for pattern in (
            f"{_APOS}(?i:n){_APOS}?", f"[lLdDjJ]{_APOS}", f"(?i:dunkin|somethin|ol){_APOS}", f"{_APOS}(?i:em)",
            f"[A-HJ-XZn]{_APOSETC}{plain_letter}{{2}}{plain_letter}*", f"{_APOS}[2-9]0(?i:s)", f"{_APOS}(?i:till?)",
            f"{plain_letter}+[aeiouyAEIOUY]{_APOSETC}[aeiouA-Z]{plain_letter}*", f"{_APOS}(?i:cause)",
            r"(?i:cont'd)\.?", "(?i:'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)", f"(?i:o){_APOSETC}(?i:o)")),
        (f"(?P<t>(?i:y){_APOS}){plain_letter}", keep),
        (f'(?i:https?)://[^ \\t\\n\\f\\r"<>|(){{}}]+{_URL_END}', keep),
        (f'(?i:www)\\.(?:[^ \\t\\n\\f\\r"<>|.!?(){{}},]+\\.)+[a-zA-Z]{{2,4}}{_URL_PATH}', keep),
        (f'(?:[^ \\t\\n\\f\\r"`\'<>|.!?(){{}},-_$]+\\.)+(?i:com|net|org|edu){_URL_PATH}', keep),
        ('(?:&(?i:lt);|<)?[a-zA-Z0-9][^ \\t\\n\\f\\r"<>|()\u00A0{}]*@(?:[^ \\t\\n\\f\\r"<>|(){}.\u00A0]+\\.)*'
         '[^ \\t\\n\\f\\r"<>|(){}.\u00A0]+(?:&(?i:gt);|>)?', keep),
        ("@[a-zA-Z_][a-zA-Z_0-9]*", keep),
        (f"#{letter}+", keep),
        (f"(?P<t>{redaux}){not_alpha}", _quotes(False)),
        (f"(?P<t>{sredaux}){not_alpha}", _quotes(False)),
        (f"{digit}{{1,2}}[-/]{digit}{{1,2}}[-/]{digit}{{2,4}}", keep),
        (f"[-+]?{num}", _soft),
        ("[\u207A\u207B\u208A\u208B]?(?:[\u2070\u00B9\u00B2\u00B3\u2074-\u2079]+|[\u2080-\u2089]+)", keep),
        (f"(?:{digit}{{1,4}}[- \u00A0])?{digit}{{1,4}}(?:\\\\?/|\u2044){digit}{{1,4}}",
         lambda t: t.replace(" ", "\u00A0")),
        ("[\u00BC\u00BD\u00BE\u2153-\u215E]", lambda t: t.translate(_FRACTIONS)),
        (f"-(?i:rrb|lrb|rcb|lcb|rsb|lsb)-|(?i:c\\.d\\.s|pro-|anti-)|(?i:s)(?:&|&(?i:amp);)(?i:p-500|ls)"
         f"|(?i:cap){_APOS}(?i:n)|(?i:c){_APOS}(?i:est)", _amp),
        (r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}", keep),
        (r"[A-Z]*\$|#", keep),
        ("[\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0\uFFE1\uFFE5\uFFE6]",
         lambda t: t.translate(_CURRENCY)),
        (f"(?P<t>{acro}\\.){_SPACENL}+(?:{_NOT_SENTENCE_FINAL}|{_SGML}){_SPACENL}", _ACRONYM),
        (f"(?P<t>(?i:ca|figs?|prop|nos?|art|bldg|pp|op)\\.){_SPACENL}?{digit}", keep),
        (f"(?P<t>(?i:pt)[eyEY]\\.|(?i:co)\\.){_SPACE}(?i:ltd|lim)", keep),
        (f"(?P<t>{_ABBREV1}){_SPACENL}(?:{_SPACENL}|{upper}|{_SGML})", _AND_PERIOD),
        (f"(?P<t>{_ABBREV1})(?s:..)", keep),
        (_ABBREV1, _AND_PERIOD),
        (f"{abbrev4}\\.", keep),
        (f"(?P<t>{abbrev4}){_SPACE}", keep),
        (f"(?P<t>{acro}){_SPACENL}", keep),
        (f"(?P<t>{_APOS}[0-9][0-9]){_SPACENL}", keep),
        (f"(?P<t>{filename})(?:{_SPACENL}|[.?!,])", keep),
        (f"(?P<t>{word}\\.){_INSENTP}", _soft),
        (r"(?:\([0-9]{2,3}\)[ \u00A0]?|(?:\+\+?)?(?:[0-9]{2,4}[- \u00A0])?[0-9]{2,4}[- \u00A0])[0-9]{3,4}[- \u00A0]?"
         r"[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}",
         lambda t: _parens(t.replace(" ", "\u00A0"))),
        ('(?P<t>"|&(?i:quot);)[A-Za-z0-9$]', _quotes(True)),
        ('"|&(?i:quot);', _quotes(False)),
        ("\x7f", _DROP),
        ("<|&(?i:lt);", lambda t: "<"),
        (">|&(?i:gt);", lambda t: ">"),
        ("(?P<t>[<>]?[:;=][-o*']?[()DPdpO\\\\{@|\\[\\]])[^A-Za-z0-9]", _parens),
        ("[\\^x=~<>]\\.\\[\\^x=~<>]|[-\\^x=~<>']_[-\\^x=~<>']|\\([-\\^x=~<>'][_.]?[-\\^x=~<>']\\)"
         "|\\([\\^x=~<>']-[\\^x=~<>'`]\\)", _parens),
        ("[{}\\[\\]()]", lambda t: _BRACKETS[t]),
        ("-+", lambda t: "--" if 3 <= len(t) <= 4 else t),
        ("\\.{3,5}|(?:\\.[ \u00A0]){2,4}\\.|[\u0085\u2026]", lambda t: "..."),
        ("@+|#+|_+", keep),
        ("\\*+|(?:\\\\\\*){1,3}", keep),
        (_INSENTP, keep),
        ("[?!]+", keep),
        ("[.\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002]", keep),
        ("=", keep),
        ("/", keep),
        (f"(?P<t>{hthing}\\.){_INSENTP}", _soft),
        (hthing, _soft),
        (f"(?P<t>{thing}\\.){_INSENTP}", keep),
        (thing, keep),
        (f"(?P<t>{thinga}\\.){_INSENTP}", _amp),
        (thinga, _amp),
        ("(?P<t>')[A-Za-z][^ \t\n\r\u00A0]", _quotes(True)),
        (redaux, _quotes(False)),
        (sredaux, _quotes(False)),
        # QUOTES: its three forms are tried each (the longest wins: "\u2019`" is one token, not two)
        *((pattern, _quotes(False)) for pattern in (
            "''", _APOS, "[`\u2018\u2019\u201A\u201B\u201C\u201D\u0091\u0092\u0093\u0094\u201E\u201F\u2039\u203A\u00AB"
                         "\u00BB]{1,2}")),
        ("<<|>>", keep),
        (_MISCSYMBOL, keep),
        (f"\0|{_SPACE}+|[\u200B\u200E\u200F\uFEFF]", _DROP),
        (_NEWLINE, _DROP),
        ("&(?i:nbsp);", _DROP),
        (".", _DROP),  # untokenizable: deleted (the lexer's default, FIRST_DELETE)
    ]
    return [(re.compile(pattern), action) for pattern, action in rules]


_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}

_compiled: list[tuple[re.Pattern, object]] = []
_CHUNK = re.compile(r"[^ \t\n]+")
_CONTEXT_FREE = re.compile(r"[^.<&(+\d]+")  # a chunk no rule reads beyond (past the space after it)
#: the separators and the next chunk, with the character after it: all that a rule reads beyond a chunk, but
#: for the tokens that run on into the next chunk (see :func:`_chunk_tokens`)
_FOLLOWING = re.compile(r"[ \t]+[^ \t\n]+.|\n", re.DOTALL)
_cache: dict[str, list[str] | None] = {}
#: plain words (ASCII letters, not an assimilation) -> their token, the lower-cased word
_plain: dict[str, str] = {}
_CACHE_SIZE = 200_000


def _next(text: str, pos: int) -> tuple[str | None, int]:
    """The lexer's next step at ``pos``: (the token or None when the text is dropped, the next position)."""
    best, best_length, best_action = None, 0, None
    for pattern, action in _compiled:
        match = pattern.match(text, pos)
        if match is not None and match.end() - pos > best_length:
            best, best_length, best_action = match, match.end() - pos, action
    if best is None:  # a line break, which the last rule does not take
        return None, pos + 1
    token = best.group("t") if "t" in best.re.groupindex else best.group()
    if best_action == _DROP:
        return None, pos + len(token)
    if best_action == _AND_PERIOD:  # the token keeps its period, which is also read again
        return token, pos + len(token) - 1
    if best_action == _ACRONYM:
        return (token[0], pos + 1) if len(token) == 2 else (token, pos + len(token) - 1)
    return (best_action(token) if best_action else token), pos + len(token)


def _lex(text: str, end: int) -> list[str] | None:
    """Tokens of ``text`` up to ``end`` (lower-cased, COCO's removed); None when a token runs past ``end``."""
    tokens, pos = [], 0
    while pos < end:
        token, pos = _next(text, pos)
        if token is not None and (token := token.lower()) not in REMOVED_TOKENS:
            tokens.append(token)
    return tokens if pos == end else None


def _may_run_on(chunk: str, following: str) -> bool:
    """Whether a token may run from ``chunk`` over the space into the next chunk, ``following``, and beyond it:
    SGML (``<a href="x y">``), a telephone number or a fraction (``555 123 4567``, ``3 1/2``), a spaced
    ellipsis (``. . .``). The lexer reads no further than the next chunk and one character otherwise."""
    first = following[:1]
    return (first == "<" or (first.isdecimal() and (chunk[-1].isdecimal() or chunk[-1] == ")"))
            or (first == "." and chunk[-1] == "."))


def _chunk_tokens(text: str, pos: int, end: int) -> list[str] | None:
    """The tokens of the chunk ``text[pos:end]`` from the cache, when they cannot depend on more of the text."""
    chunk = text[pos:end]
    if text[end] in " \t" and _CONTEXT_FREE.fullmatch(chunk):
        key, context = chunk, chunk + " "
    else:
        following = _FOLLOWING.match(text, end)
        if following is None or "<" in chunk or _may_run_on(chunk, text[end:following.end()].lstrip(" \t")):
            return None
        key = context = text[pos:following.end()]
    if key not in _cache:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = _lex(context, len(chunk))
    return _cache[key]


def tokenize(text: str | None) -> list[str]:
    """Tokens of ``text`` as the COCO caption tools produce them (see the module docstring)."""
    if not text:
        return []
    if not _compiled:
        _compiled.extend(_rules())
    # a caption is one line of the Java tool's input: a line break follows it (the next caption's first
    # word, which the tool may also read, is not known here)
    text = text.translate(_LINE_BREAKS) + "\n"
    tokens: list[str] = []
    pos = 0
    for chunk in _CHUNK.finditer(text):
        start, end = chunk.span()
        if end <= pos:  # taken by a token that ran on from an earlier chunk
            continue
        if start >= pos:
            word = chunk.group()
            plain = _plain.get(word)
            if plain is not None:  # a plain word seen before
                tokens.append(plain)
                pos = end
                continue
            if word.isascii() and word.isalpha() and not _ASSIMILATIONS.fullmatch(word):
                plain = word.lower()  # a plain word before a space: always the WORD rule
                if len(_plain) >= _CACHE_SIZE:
                    _plain.clear()
                _plain[word] = plain
                tokens.append(plain)
                pos = end
                continue
            cached = _chunk_tokens(text, start, end)
            if cached is not None:
                tokens.extend(cached)
                pos = end
                continue
            pos = start
        while pos < end:
            token, pos = _next(text, pos)
            if token is not None and (token := token.lower()) not in REMOVED_TOKENS:
                tokens.append(token)
    return tokens

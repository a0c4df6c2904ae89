"""What `cacheops suspects` looks for in one decoded entry: the rules, their patterns and checksums,
and the masking of what they find.

Every rule is a pure function of the entry (and the settings): no Redis. So the same verdict is
reached by the report and, key by key at delete time, by `evict --suspect RULE`.

The failure patterns look where a failure shows, the start of the answer: an answer that *explains*
a 429 is not an error cached as an answer; one that *is* "Error code: 429 ..." is. Secrets and
personal data are searched in the whole prompt and answer, checked where a checksum exists (Luhn for
card numbers, mod 97 for IBANs) so digit runs are not reported as cards.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..config import SuspectSettings
from ..errors import ConfigError, UsageError
from ..layouts import Entry

SEVERITIES = ("info", "low", "medium", "high", "critical")
RANK = {name: n for n, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Rule:
    name: str
    category: str  # failure | secrets | time | stale | custom
    severity: str
    what: str


BUILTIN: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("empty_answer", "failure", "high", "empty or whitespace-only answer"),
        Rule("error_text", "failure", "high", "an error or outage message cached as the answer"),
        Rule("refusal", "failure", "medium", "a refusal cached as the answer"),
        Rule("cut_off", "failure", "medium", "generation stopped at the token limit (finish/stop reason)"),
        Rule("content_filter", "failure", "medium", "generation stopped by a content filter (finish/stop reason)"),
        Rule("tool_calls_only", "failure", "low", "tool-call-only generation, no text"),
        Rule("secret", "secrets", "high", "API key, token, private key, JWT or password in a URL"),
        Rule("personal_data", "secrets", "medium", "email, phone number, payment card (Luhn) or IBAN (mod 97)"),
        Rule("time_sensitive", "time", "medium", "time-sensitive prompt cached with no TTL or a long one"),
        Rule("stale", "stale", "low", "a retired model's answer, or written before --before"),
    )
}
CATEGORIES = ("failure", "secrets", "time", "stale", "custom")
# A secret or personal data in a semantic cache no user/tenant field scopes: served to anyone who asks
# something similar. The finding is raised one severity step and marked leak_risk.
LEAK_RAISE = 1


@dataclass(slots=True)
class Finding:
    rule: str
    severity: str
    why: str  # never holds a matched secret: masked
    field: str | None = None  # "prompt" | "answer" when a span of that text is the evidence
    span: tuple[int, int] | None = None
    leak_risk: bool = False


# -- failures -------------------------------------------------------------------------------------

HEAD = 300  # failure text shows at the start of an answer: only this much is searched

_ERROR_AT_START = re.compile(  # used with match(): the start of the answer only
    r"""\W{0,3}(?:
        [\w.]*(?:error|exception)(?:\s*code)?\s*(?:\(?\d{3}\)?\s*)?[:\-–] | traceback\ \(most\ recent | fatal\s*:
      | failed\ to\ (?:generate|get\ a\ response|call|fetch)
      | (?:http\s*)?(?:429|5\d\d)\s*[-:]?\s*(?:too\ many|internal|bad\ gateway|service|gateway|error)
      | too\ many\ requests | rate[\ _-]?limit(?:ed|\ (?:exceeded|reached|error))
      | internal\ server\ error | bad\ gateway | service\ (?:temporarily\ )?unavailable | gateway\ time-?out
      | request\ timed?\ ?out | timed\ out | (?:connection|read)\ (?:error|timeout|refused|reset)
      | upstream\ (?:connect\ error|request\ timeout) | the\ server\ had\ an\ error | \{\s*"error"\s*:
    )""",
    re.I | re.X,
)
_ERROR_ANYWHERE = re.compile(
    r"""traceback\ \(most\ recent\ call\ last\) | rate[\ _]limit[\ _](?:exceeded|reached|error)
      | ratelimiterror | \binsufficient_quota\b | you\ exceeded\ your\ current\ quota | context_length_exceeded
      | \bapi(?:connection|timeout|status)error\b | \boverloaded_error\b | \bserviceunavailableerror\b
      | <title>\s*(?:50[0234]|429|error)""",
    re.I | re.X,
)
_REFUSAL = re.compile(  # used with match()
    r"""\W{0,3}(?:
        (?:i['’]?m|i\ am)\ (?:sorry|afraid)[,.!]?\ (?:but\ )?
          i\ (?:can(?:no|['’])t|am\ (?:not\ able|unable)|won['’]?t|must\ decline)
      | (?:sorry|apologies|i\ apologi[sz]e)[,.!]?\ (?:but\ )?
          i\ (?:can(?:no|['’])t|am\ (?:not\ able|unable)|won['’]?t)
      | i\ (?:can(?:no|['’])t|won['’]?t|am\ (?:not\ able|unable)\ to)
          \ (?:help|assist|provide|comply|do\ that|answer|fulfil)
      | as\ an\ ai(?:\ language\ model)?[,\ ]
      | i\ must\ decline
    )""",
    re.I | re.X,
)
_ERROR_MARKERS = ("traceback", "rate", "quota", "context_length", "error", "<title>")


def _error_anywhere(head: str):
    lowered = head.lower()
    for marker in _ERROR_MARKERS:  # substring searches first: most answers hold none of them
        if marker in lowered:
            return _ERROR_ANYWHERE.search(head)
    return None


_LENGTH_REASONS = {"length", "max_tokens", "max_output_tokens", "model_length", "token_limit"}
_FILTER_REASONS = {
    "content_filter",
    "content_filtered",
    "safety",
    "recitation",
    "blocklist",
    "prohibited_content",
    "spii",
    "refusal",
    "guardrail_intervened",
}
_REASON_KEYS = ("finish_reason", "stop_reason", "done_reason", "finishReason")


def stop_reasons(entry: Entry) -> list[str]:
    """finish_reason / stop_reason of each stored generation (LangChain's generation_info and
    response_metadata, an OpenAI-shaped response's choices), lower-cased."""
    out = []
    for gen in entry.generations or ():
        if not isinstance(gen, dict):
            continue
        places = [gen.get("generation_info"), gen.get("response_metadata")]
        if "choices" in gen:
            places.extend(_choices(gen))
        for where in places:
            if where and isinstance(where, dict):
                reason = _reason(where)
                if reason:
                    out.append(reason.lower())
    return out


def _reason(where: dict) -> str | None:
    for name in _REASON_KEYS:  # finish_reason first: the common one
        value = where.get(name)
        if value and isinstance(value, str):
            return value
    return None


def _choices(gen: dict) -> list:
    choices = gen.get("choices")
    return choices if isinstance(choices, list) else []


def has_tool_calls(entry: Entry) -> bool:
    for gen in entry.generations or ():
        if isinstance(gen, dict):
            if gen.get("tool_calls"):
                return True
            for choice in _choices(gen):
                message = choice.get("message") if isinstance(choice, dict) else None
                if isinstance(message, dict) and message.get("tool_calls"):
                    return True
    return False


def failure_findings(entry: Entry, wanted: set[str], found: list[Finding]) -> None:
    """Append the failure rules' findings (of those in `wanted`) on this entry to `found`."""
    answer = entry.answer
    if answer is None or entry.kind == "embeddings":
        return
    if not answer or answer.isspace():
        if not entry.truncated:
            if has_tool_calls(entry):
                if "tool_calls_only" in wanted:
                    found.append(Finding("tool_calls_only", "", "only tool calls, no text"))
            elif "empty_answer" in wanted:
                found.append(
                    Finding("empty_answer", "", "the cached answer is empty" if not answer else "only whitespace")
                )
    else:
        # match() looks at the start only, whatever the answer's length; "anywhere" means its head
        if "error_text" in wanted:
            m = _ERROR_AT_START.match(answer) or _error_anywhere(answer[:HEAD])
            if m:
                found.append(Finding("error_text", "", f"error text {m.group(0).strip()[:40]!r}", "answer", m.span()))
        if "refusal" in wanted:
            m = _REFUSAL.match(answer)
            if m:
                found.append(Finding("refusal", "", f"refusal {m.group(0).strip()[:40]!r}", "answer", m.span()))
    if entry.generations and ("cut_off" in wanted or "content_filter" in wanted):
        for reason in stop_reasons(entry):
            if reason in _LENGTH_REASONS and "cut_off" in wanted:
                found.append(Finding("cut_off", "", f"stop reason {reason!r}: cut at the token limit"))
                break
            if reason in _FILTER_REASONS and "content_filter" in wanted:
                found.append(Finding("content_filter", "", f"stop reason {reason!r}: a content filter"))
                break


# -- secrets and personal data ----------------------------------------------------------------------

# (kind, literals one of which every match contains, pattern): the literals are looked for first (substring
# searches), so a text holding none of them costs no regular expression at all.
_SECRETS = [
    (kind, markers, re.compile(pattern))
    for kind, markers, pattern in (
        ("anthropic_key", ("sk-ant-",), r"\bsk-ant-[a-z0-9]+-[A-Za-z0-9_-]{20,}"),
        ("openai_key", ("sk-",), r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
        ("aws_access_key", ("AKIA", "ASIA"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        ("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"\bgh[pousr]_[A-Za-z0-9]{36,}"),
        ("github_token", ("github_pat_",), r"\bgithub_pat_[A-Za-z0-9_]{22,}"),
        ("google_api_key", ("AIza",), r"\bAIza[0-9A-Za-z_-]{35}"),
        ("slack_token", ("xox",), r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("stripe_key", ("k_live_", "k_test_"), r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
        ("huggingface_token", ("hf_",), r"\bhf_[A-Za-z0-9]{30,}"),
        ("groq_key", ("gsk_",), r"\bgsk_[A-Za-z0-9]{40,}"),
        (
            "private_key",
            ("PRIVATE KEY",),
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]{0,8000}?(?:-----END[^-\n]{0,40}-----|\Z)",
        ),
        ("jwt", ("eyJ",), r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        (
            "password_in_url",
            ("://",),
            r"\b[a-z][a-z0-9+.-]{1,15}://[^\s/:@\"'<>]*:(?P<secret>[^\s/@\"'<>]{3,})@[\w.-]+",
        ),
        ("bearer_token", ("Bearer",), r"\bBearer\s+(?P<secret>[A-Za-z0-9._~+/-]{24,}=*)"),
    )
]
_PLACEHOLDER_PASSWORDS = {"password", "passwd", "pass", "pwd", "secret", "changeme", "xxx", "xxxx", "***", "****"}

_EMAIL = re.compile(r"\b[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b")
# Published addresses of an organisation are not personal data; RFC 2606/6761 names belong to no one.
_ROLE_MAILBOXES = {
    "support",
    "help",
    "info",
    "hello",
    "contact",
    "sales",
    "billing",
    "privacy",
    "security",
    "abuse",
    "postmaster",
    "webmaster",
    "hostmaster",
    "noreply",
    "no-reply",
    "donotreply",
    "admin",
    "team",
    "press",
    "legal",
    "careers",
    "jobs",
    "git",  # git@github.com:org/repo
}
_EXAMPLE_DOMAIN = re.compile(r"(?:^|\.)(?:example\.(?:com|org|net)|[^.]+\.(?:example|test|invalid|localhost))$", re.I)
_PHONE = re.compile(
    r"""(?<![\w+])(?:
        \+[1-9]\d{0,2}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}
      | \(\d{3}\)\s?\d{3}[\s.-]\d{4}
      | \d{3}[.-]\d{3}[.-]\d{4}
    )(?![\w-])""",
    re.X,
)
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28, "CZ": 24,
    "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27,
    "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TR": 26, "UA": 29,
}  # fmt: skip


def luhn_ok(digits: str) -> bool:
    total = 0
    for n, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if n % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_number(text: str) -> bool:
    """A payment card number: 13-19 digits, an issuer's first digit (2-6), Luhn-valid, not one repeated digit."""
    digits = text.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and len(set(digits)) > 1 and luhn_ok(digits)


def iban_ok(text: str) -> bool:
    """An IBAN of a known country's length whose mod-97 check (ISO 13616) holds."""
    iban = text.replace(" ", "")
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


# Every secret pattern's literal holds one of these (or "_"): a text with none of them is skipped at once.
_SECRET_MARKERS = ("sk-", "xox", "AKIA", "ASIA", "AIza", "eyJ", "://", "Bearer", "PRIVATE KEY")
# Each marker with a character of its own that prose seldom holds. A one-character search is a
# memchr, ~10x cheaper than searching for the marker, which runs only when the character is there.
_MARKER_CHARS = tuple(
    (next((ch for ch in "-JKYzxSB:" if ch in marker), marker[0]), marker) for marker in _SECRET_MARKERS
)


def might_hold_secret(text: str) -> bool:
    if "_" in text:
        return True
    for char, marker in _MARKER_CHARS:  # noqa: SIM110 (a loop: any() of a generator costs more per text)
        if char in text and marker in text:
            return True
    return False


def secret_spans(text: str) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) of every secret in text; for a URL or a bearer header only the password/token."""
    if not text or not might_hold_secret(text):
        return
    for kind, markers, pattern in _SECRETS:
        if not any(marker in text for marker in markers):
            continue
        for m in pattern.finditer(text):
            if "secret" in pattern.groupindex:
                value = m.group("secret")
                if kind == "password_in_url" and (
                    value.lower() in _PLACEHOLDER_PASSWORDS or value[0] in "<${[*" or set(value) <= {"*", "x", "X"}
                ):
                    continue
                yield kind, m.start("secret"), m.end("secret")
            else:
                yield kind, m.start(), m.end()


_NUMBERISH = bytes.maketrans(b"0123456789 .-()+", b"0" * 16)


def _has_number_run(text: str) -> bool:
    """Whether text holds 9 or more digits and separators in a row (C-speed: every phone, card and
    IBAN number written out does; most text does not, and is then not searched)."""
    return b"000000000" in text.encode("utf-8", "replace").translate(_NUMBERISH)


def might_hold_personal(text: str) -> bool:
    return "@" in text or _has_number_run(text)


def personal_spans(text: str) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) of every email, phone number, card number and IBAN in text."""
    if not text:
        return
    if "@" in text:
        for m in _EMAIL.finditer(text):
            local, _, domain = m.group(0).partition("@")
            if local.lower() in _ROLE_MAILBOXES or _EXAMPLE_DOMAIN.search(domain):
                continue
            yield "email", m.start(), m.end()
    if not _has_number_run(text):
        return
    for m in _PHONE.finditer(text):
        digits = sum(ch.isdigit() for ch in m.group(0))
        if 8 <= digits <= 15:
            yield "phone", m.start(), m.end()
    for m in _CARD.finditer(text):
        if card_number(m.group(0)):
            yield "payment_card", m.start(), m.end()
    for m in _IBAN.finditer(text):
        if iban_ok(m.group(0)):
            yield "iban", m.start(), m.end()


# -- time-sensitive prompts -------------------------------------------------------------------------

_TIME_SENSITIVE = re.compile(
    r"""\b(?:today|tonight|tomorrow|yesterday|right\ now|as\ of\ now|at\ the\ moment|currently|current|latest
      | now(?=\s*(?:[?!.]|$))  # a question ending in 'now': "who is leading now?"
      | this\ (?:morning|afternoon|evening|week|weekend|month|quarter|year)|next\ (?:week|month|year)
      | weather|forecast|temperature\ (?:in|at|outside)|stocks?|share\ price|prices?|exchange\ rates?
      | bitcoin|btc|crypto|news|headlines|breaking|election\ results?|scores?\ of
      | what\ (?:time|day)\ is\ it|what(?:['’]s|\ is)\ the\ (?:date|time)|(?:date|time)\ (?:today|now))\b""",
    re.I | re.X,
)
# Words of which the pattern above needs at least one: a prompt holding none is not searched.
_TIME_WORDS = frozenset(
    b"today tonight tomorrow yesterday now moment currently current latest this next weather forecast "
    b"temperature stock stocks share price prices exchange bitcoin btc crypto news headlines breaking "
    b"election score scores time day date".split()
)
_PUNCTUATION = b"?!.,;:'\"()[]{}/"
_WORD_BREAKS = bytes.maketrans(_PUNCTUATION, b" " * len(_PUNCTUATION))


def time_sensitive(prompt: str):
    """The match of a time-sensitive word or phrase in the prompt, or None."""
    words = prompt.encode("utf-8", "replace").lower().translate(_WORD_BREAKS).split()
    if _TIME_WORDS.isdisjoint(words):
        return None
    return _TIME_SENSITIVE.search(prompt)


# -- masking ----------------------------------------------------------------------------------------


def mask(secret: str) -> str:
    """First and last characters only: enough to recognise which key it is, never enough to use it."""
    flat = " ".join(secret.split())
    if len(flat) >= 24 and "@" not in flat:  # a key: its prefix names the provider, the secret is the rest
        return f"{flat[:4]}…{flat[-2:]}"
    if len(flat) >= 6:
        return f"{flat[0]}…{flat[-1]}"
    return "…"


@dataclass
class Masked:
    """A text with its secret and personal spans masked, and a map from the original offsets."""

    text: str
    _pieces: list[tuple[int, int, int, int]] = field(default_factory=list)  # orig start/end -> new start/end

    def offset(self, pos: int, end: bool = False) -> int:
        shift = 0
        for o_start, o_end, n_start, n_end in self._pieces:
            if pos < o_start or (pos == o_start and not end):
                break
            if pos <= o_end:  # inside a masked span: its whole masked form
                return n_end if end else n_start
            shift = n_end - o_end
        return pos + shift


def masked(text: str, spans: list[tuple[int, int]]) -> Masked:
    if not spans:
        return Masked(text)
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pieces, pos = [], [], 0
    length = 0
    for start, end in merged:
        out.append(text[pos:start])
        length += start - pos
        replacement = mask(text[start:end])
        pieces.append((start, end, length, length + len(replacement)))
        out.append(replacement)
        length += len(replacement)
        pos = end
    out.append(text[pos:])
    return Masked("".join(out), pieces)


def sensitive_spans(text: str | None, custom_secret: Sequence[re.Pattern] = ()) -> list[tuple[int, int]]:
    """Every span of text that is never printed as is: secrets, personal data, custom secret rules' matches."""
    if not text:
        return []
    spans = [(s, e) for _, s, e in secret_spans(text)]
    spans += [(s, e) for _, s, e in personal_spans(text)]
    for pattern in custom_secret:
        spans += [m.span() for m in pattern.finditer(text) if m.end() > m.start()]
    return spans


def redacted(entry: Entry, custom_secret: Sequence[re.Pattern] = ()) -> Entry:
    """A copy of the entry whose prompt and answer have their secrets and personal data masked (for
    previews: what to_dict() shows)."""
    spans = sensitive_spans(entry.prompt, custom_secret), sensitive_spans(entry.answer, custom_secret)
    if not (spans[0] or spans[1]):
        return entry
    copy = dataclasses.replace(entry)
    copy.prompt = masked(entry.prompt, spans[0]).text if entry.prompt else entry.prompt
    copy.answer = masked(entry.answer, spans[1]).text if entry.answer else entry.answer
    copy.messages = copy.generations = None  # they hold the same texts unmasked
    return copy


def excerpt(text: str | None, span: tuple[int, int] | None, sensitive: list[tuple[int, int]], width: int = 48) -> str:
    """A one-line excerpt of text around span with the match marked «like this», secrets masked."""
    if text is None:
        return "-"
    if not text.strip():
        return "(empty)" if not text else "(whitespace)"
    m = masked(text, sensitive)
    if span is None:
        flat = " ".join(m.text.split())
        return flat if len(flat) <= 2 * width else flat[: 2 * width - 1] + "…"
    start, end = m.offset(span[0]), m.offset(span[1], end=True)
    lo, hi = max(0, start - width), min(len(m.text), end + width)
    body = f"{m.text[lo:start]}«{m.text[start:end]}»{m.text[end:hi]}"
    return ("…" if lo else "") + " ".join(body.split()) + ("…" if hi < len(m.text) else "")


# -- the rule set ------------------------------------------------------------------------------------


@dataclass
class RuleSet:
    """The rules in force: the built-in ones and the config's, optionally narrowed to some."""

    settings: SuspectSettings = field(default_factory=SuspectSettings)
    only: set[str] | None = None  # rule names or categories; None: every rule
    before: float | None = None  # epoch seconds: entries inserted earlier are stale
    now: float = field(default_factory=time.time)

    def __post_init__(self):
        self.custom = {r.name: (r, re.compile(r.pattern)) for r in self.settings.rules}
        clash = set(self.custom) & set(BUILTIN)
        if clash:
            raise ConfigError(f"suspects.rules: {sorted(clash)[0]!r} is a built-in rule's name: choose another")
        self.rules: dict[str, Rule] = dict(BUILTIN)
        for name, (r, _) in self.custom.items():
            self.rules[name] = Rule(name, "custom", r.severity, r.why or f"matches {r.pattern}")
        categories = CATEGORIES
        if self.only is not None:
            unknown = [n for n in self.only if n not in self.rules and n not in categories]
            if unknown:
                raise UsageError(
                    f"no suspects rule {unknown[0]!r}: choose from {', '.join(self.rules)} "
                    f"(or a category: {', '.join(sorted(categories))})"
                )
        self.wanted = {
            name for name, r in self.rules.items() if self.only is None or name in self.only or r.category in self.only
        }
        if "stale" in self.wanted and not (self.settings.retired_models or self.before is not None):
            if self.only is not None and "stale" in self.only:
                raise UsageError(
                    "the stale rule needs --before DATE, or retired models listed under suspects.retired_models "
                    "in the config file"
                )
            self.wanted.discard("stale")  # nothing to judge staleness by
        self._secret_rules = [
            (rule, spans, gate)
            for rule, spans, gate in (
                ("secret", secret_spans, might_hold_secret),
                ("personal_data", personal_spans, might_hold_personal),
            )
            if rule in self.wanted
        ]
        self.custom_secret = [pattern for r, pattern in self.custom.values() if r.secret]
        self._failure = self.wanted & {n for n, r in BUILTIN.items() if r.category == "failure"}

    def check(self, entry: Entry) -> list[Finding]:
        """Every finding of the wanted rules on this entry, each with its rule's severity."""
        found: list[Finding] = []
        if self._failure:
            failure_findings(entry, self._failure, found)
        if self._secret_rules:
            self._secrets(entry, found)
        if "time_sensitive" in self.wanted and entry.prompt and entry.kind != "embeddings":
            limit = self.settings.volatile_ttl_seconds
            if entry.ttl_ms is None or entry.ttl_ms > limit * 1000:
                m = time_sensitive(entry.prompt)
                if m:
                    ttl = "no TTL" if entry.ttl_ms is None else f"TTL {entry.ttl_ms / 1000:.0f}s > {limit}s"
                    found.append(
                        Finding("time_sensitive", "", f"{m.group(0)!r} in the prompt, {ttl}", "prompt", m.span())
                    )
        if "stale" in self.wanted:
            found.extend(self._stale(entry))
        for name, (rule, pattern) in self.custom.items():
            if name in self.wanted:
                for where in rule.fields:
                    text = entry.prompt if where == "prompt" else entry.answer
                    m = pattern.search(text) if text else None
                    if m:
                        found.append(Finding(name, "", self.rules[name].what, where, m.span()))
                        break
        for f in found:
            f.severity = self.rules[f.rule].severity
        return found

    def reports(self, entry: Entry, rule: str) -> bool:
        """Whether `rule` (a name or a category) reports this entry: evict --suspect's predicate."""
        return any(f.rule == rule or self.rules[f.rule].category == rule for f in self.check(entry))

    def _secrets(self, entry: Entry, found: list[Finding]) -> None:
        prompt, answer = entry.prompt or "", entry.answer or ""
        both = f"{prompt}\n{answer}"  # one cheap gate for both texts: most entries hold no candidate at all
        for rule, spans, gate in self._secret_rules:
            if not gate(both):
                continue
            for where, text in (("prompt", prompt), ("answer", answer)):
                hits = list(spans(text)) if text else []
                if hits:
                    kinds = ", ".join(sorted({kind for kind, _, _ in hits}))
                    found.append(Finding(rule, "", f"{kinds} in the {where}", where, (hits[0][1], hits[0][2])))
                    break

    def _stale(self, entry: Entry) -> Iterator[Finding]:
        for model in self.settings.retired_models:
            if entry.has_model(model):
                yield Finding("stale", "", f"model {model!r} is marked retired in the config")
                return
        if self.before is not None and entry.inserted_at is not None and entry.inserted_at < self.before:
            yield Finding("stale", "", f"written {_date(entry.inserted_at)}, before {_date(self.before)}")


def _date(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def raise_severity(severity: str, steps: int = LEAK_RAISE) -> str:
    return SEVERITIES[min(len(SEVERITIES) - 1, RANK[severity] + steps)]


def parse_date(text: str) -> float:
    """'2026-11-01' or '2026-11-01T12:00' (UTC unless an offset is given) -> epoch seconds."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--before {text!r}: give a date like 2026-11-01 (or 2026-11-01T12:00, UTC)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()

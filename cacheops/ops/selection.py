"""Which cache entries a destructive command acts on: selectors (ANDed), their candidate keys, and
the predicate every candidate must pass.

A selection is evaluated in two steps:
- candidates: a stream of key batches from the narrowest source the selectors allow (the keys given,
  the keys a prompt hashes to, a hash's SCAN MATCH, the semantic neighbours, else one SCAN pass);
- accepts(entry): every selector is checked on the decoded entry. Only entries a layout recognised
  ever get here, so a foreign key is never selected, whatever the source produced.
The predicate is pure (no Redis), so it is re-run unchanged at delete time on the re-read entry.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import redis

from ..errors import UsageError
from ..inspect.suspect_rules import RuleSet, redacted
from ..inspect.suspects import rule_set
from ..layouts import BY_ID, LAYOUTS, Context, Entry, PromptQuery
from ..server.keyspace import glob_escape

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.I)
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def parse_duration(text: str) -> float:
    """'90s', '30m', '12h', '7d', '2w', '1h30m' -> seconds."""
    cleaned = text.strip().lower()
    parts = _DURATION_RE.findall(cleaned)
    if not parts or _DURATION_RE.sub("", cleaned).strip():
        raise UsageError(f"duration {text!r}: write a number and a unit, e.g. 90s, 30m, 12h, 7d, 2w or 1h30m")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


@dataclass
class SimilarTo:
    """--similar-to: the entries within `threshold` of `text` (filled by neighbours.similar_to_text)."""

    text: str
    threshold: float
    embedding: str | None = None
    distances: dict[str, float] = field(default_factory=dict)  # entry key -> distance


@dataclass
class Selection:
    prompts: list[str] = field(default_factory=list)
    system: str | None = None
    prompt_hashes: list[str] = field(default_factory=list)
    keys: Iterable[bytes] | None = None  # a stream: --keys-from may be large, it is never held whole
    key_source: str | None = None  # how keys were given, for the operations log ("--key", "--keys-from FILE")
    tags: dict[str, str] = field(default_factory=dict)
    response_contains: list[str] = field(default_factory=list)
    response_regex: str | None = None
    model: str | None = None
    older_than: float | None = None  # seconds
    older_than_text: str | None = None
    cold: float | None = None  # seconds without a tracked hit (cacheops_track records only)
    cold_text: str | None = None
    cache: str | None = None
    unreachable: bool = False
    similar: SimilarTo | None = None
    suspect: str | None = None  # a `cacheops suspects` rule or category: exactly the entries it reports
    before: float | None = None  # with suspect stale: its --before date (epoch seconds)
    before_text: str | None = None
    now: float = field(default_factory=time.time)
    _regex: re.Pattern | None = field(default=None, repr=False)
    _suspects: RuleSet | None = field(default=None, repr=False)

    def __post_init__(self):
        self.prompt_hashes = [h.strip().lower() for h in self.prompt_hashes]
        for h in self.prompt_hashes:
            if not (_HEX32.match(h) or _HEX64.match(h)):
                raise UsageError(f"--prompt-hash {h!r}: give the 32-hex md5 or the 64-hex sha256 from the key")
        if self.system is not None and not self.prompts:
            raise UsageError("--system goes with --prompt: give the user's text too")
        if self.response_regex is not None:
            try:
                self._regex = re.compile(self.response_regex)
            except re.error as exc:
                raise UsageError(f"--response-regex {self.response_regex!r}: {exc}") from None
        if self.suspect is not None:
            self._suspects = rule_set([self.suspect], self.before)
            if not self._suspects.wanted:
                raise UsageError(f"--suspect {self.suspect}: the config file defines no rule of this category")
        elif self.before is not None:
            raise UsageError("--before goes with --suspect (the date the stale rule judges by)")

    # -- what was asked ------------------------------------------------------------------------
    @property
    def empty(self) -> bool:
        """No selector at all: evicting 'everything' must be asked for explicitly (--cache NAME)."""
        return not (
            self.prompts
            or self.prompt_hashes
            or self.keys is not None
            or self.tags
            or self.response_contains
            or self.response_regex
            or self.model
            or self.older_than
            or self.cold is not None
            or self.cache is not None
            or self.unreachable
            or self.similar
            or self.suspect
        )

    def describe(self) -> dict:
        """The selectors as given, for the preview, the backup header and the operations log."""
        out: dict = {}
        if self.prompts:
            out["prompt"] = self.prompts
        if self.system is not None:
            out["system"] = self.system
        if self.prompt_hashes:
            out["prompt_hash"] = self.prompt_hashes
        if self.keys is not None:
            out["keys"] = self.key_source or "given"
        if self.tags:
            out["tag"] = [f"{k}={v}" for k, v in self.tags.items()]
        if self.response_contains:
            out["response_contains"] = self.response_contains
        if self.response_regex:
            out["response_regex"] = self.response_regex
        if self.model:
            out["model"] = self.model
        if self.older_than is not None:
            out["older_than"] = self.older_than_text or f"{self.older_than:g}s"
        if self.cold is not None:
            out["cold"] = self.cold_text or f"{self.cold:g}s"
        if self.cache is not None:
            out["cache"] = self.cache
        if self.unreachable:
            out["unreachable"] = True
        if self.similar:
            out["similar_to"] = {
                "text": self.similar.text,
                "threshold": self.similar.threshold,
                "embedding": self.similar.embedding,
            }
        if self.suspect is not None:
            out["suspect"] = self.suspect
            if self.before is not None:
                out["before"] = self.before_text or self.before
        return out

    @property
    def needs_full_values(self) -> bool:
        return bool(self.response_contains or self.response_regex)

    @property
    def needs_full_decode(self) -> bool:
        """Whether entries must be decoded fully to be judged: the layouts' matches() compare a
        prompt with the entry's messages, which a listing decode leaves out (Layout.decode)."""
        return bool(self.prompts)  # suspects rules judge a listing decode (it keeps why generations stopped)

    @property
    def needs_tags(self) -> bool:
        return bool(self.tags)

    def queries(self) -> list[PromptQuery]:
        return [PromptQuery(p, self.system) for p in self.prompts]

    # -- the predicate ---------------------------------------------------------------------------
    def accepts(self, entry: Entry, extra_tags: dict[str, str] | None = None, last_seen: float | None = None) -> bool:
        """Every selector holds for this decoded entry. extra_tags: its cacheops tag hash;
        last_seen: with --cold, its tracked last hit (or write, if never hit); None: untracked,
        or rewritten since it was judged (then it is fresh: not cold)."""
        if self.cache is not None and entry.cache != self.cache:
            return False
        if self.prompts:
            layout = BY_ID[entry.layout]
            if not any(layout.matches(entry, q) for q in self.queries()):
                return False
        if self.prompt_hashes and entry.prompt_hash not in self.prompt_hashes:
            return False
        if self.model is not None and not entry.has_model(self.model):
            return False
        if self.tags and not self._tags_match(entry, extra_tags or {}):
            return False
        if self.response_contains or self._regex:
            answer = entry.answer or ""
            if any(piece not in answer for piece in self.response_contains):
                return False
            if self._regex and not self._regex.search(answer):
                return False
        if self.older_than is not None:
            # Entries that record no insertion time (LangChain exact) have no known age: never
            # selected by age, and the preview says how many were passed over.
            born = entry.inserted_at
            if born is None or self.now - born < self.older_than:
                return False
        if self.cold is not None and (last_seen is None or self.now - last_seen < self.cold):
            return False
        if self.unreachable and not getattr(entry, "unreachable", None):
            return False
        if self.similar is not None and entry.key not in self.similar.distances:
            return False
        return self._suspects is None or self._suspects.reports(entry, self.suspect or "")

    def presentable(self, entry: Entry) -> Entry:
        """The entry as a preview may show it: secrets and personal data in its prompt and answer masked."""
        return redacted(entry, self._suspects.custom_secret if self._suspects is not None else [])

    def _tags_match(self, entry: Entry, extra: dict[str, str]) -> bool:
        for name, wanted in self.tags.items():
            have = entry.tags.get(name) if entry.tags else None
            if have is None:
                have = extra.get(name)
            if have is None:
                return False
            # RedisVL TAG fields hold comma-separated tags; a NUMERIC field "3" also equals "3.0".
            values = {v.strip() for v in have.split(",")} | {have}
            if wanted not in values and not _same_number(have, wanted):
                return False
        return True

    # -- candidate keys ----------------------------------------------------------------------------
    def source(self) -> str:
        if self.keys is not None:
            return "keys"
        if self.prompts:
            return "prompt"
        if self.prompt_hashes:
            return "prompt-hash"
        if self.similar is not None:
            return "similar"
        return "scan"

    def scan_match(self) -> str | None:
        return f"{glob_escape(self.cache)}:*" if self.cache is not None else None

    def candidate_batches(self, client: redis.Redis, ctx: Context, batch: int = 500) -> Iterator[list[bytes]]:
        """Candidate keys in batches, for every source except a full scan (the caller streams that
        through the scan engine, which reads keys and values in one round trip)."""
        source = self.source()
        if source == "keys":
            yield from batched(_dedupe_window(self.keys or ()), batch)
        elif source == "prompt":
            yield from batched(_dedupe_window(self._prompt_candidates(client, ctx)), batch)
        elif source == "prompt-hash":
            yield from batched(_dedupe_window(self._hash_candidates(client, ctx)), batch)
        elif source == "similar":
            yield from batched((k.encode() for k in (self.similar.distances if self.similar else {})), batch)

    def _prompt_candidates(self, client, ctx) -> Iterator[bytes]:
        for query in self.queries():
            for layout in LAYOUTS:
                for key in layout.locate(client, query, ctx, self.cache):
                    yield key.encode() if isinstance(key, str) else key

    def _hash_candidates(self, client, ctx) -> Iterator[bytes]:
        prefix = glob_escape(self.cache) if self.cache is not None else "*"
        for h in self.prompt_hashes:
            if len(h) == 32:  # md5(prompt): langchain-redis exact keys <prefix>:<md5>:<md5(llm)>
                yield from client.scan_iter(match=f"{prefix}:{h}:*", count=1000)
            else:  # sha256: RedisVL-style <name>:<sha256>; known semantic prefixes first, then SCAN
                for idx in ctx.indexes:
                    for p in idx.prefixes:
                        yield f"{p.rstrip(':')}:{h}".encode()
                yield from client.scan_iter(match=f"{prefix}:{h}", count=1000)


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _dedupe_window(keys: Iterable, window: int = 100_000) -> Iterator[bytes]:
    """Drop repeats (SCAN returns a key at least once; two prompts can locate the same key) with a
    bounded memory: a repeat further apart than `window` keys is re-read, which is harmless."""
    seen: set[bytes] = set()
    for key in keys:
        key = key.encode("utf-8") if isinstance(key, str) else key
        if key in seen:
            continue
        if len(seen) >= window:
            seen.clear()
        seen.add(key)
        yield key


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Lists of up to `size` items, streamed (itertools.batched is Python >= 3.12)."""
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

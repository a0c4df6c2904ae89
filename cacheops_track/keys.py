"""The keys the hit tracker writes, under cacheops' own prefix: defined once, here, for both sides.

The app-side tracker (this package) writes them; cacheops' readers (stats, scan, show, metrics,
evict) import these names from here. This module imports nothing.

    cacheops:hit:<entry key>        HASH  one cache entry's record: hits, last hit, when it was
                                          written, the prompt (text or hash) and model, the usage
                                          of its generation. Expires with its entry (PEXPIREAT of
                                          the entry's expiry), or ENTRY_IDLE_SECONDS after its last
                                          activity when the entry has no expiry; evict takes it
                                          along with the entry and restore puts it back.
    cacheops:hitrate:m:<cache>      HASH  minute buckets: field "<minute>|<model>|<counter>",
                                          each field expiring MINUTE_RETENTION after its minute
                                          (hash-field expiry, Redis >= 7.4)
    cacheops:hitrate:h:<cache>      HASH  hour buckets, the same, kept HOUR_RETENTION
    cacheops:hitrate:t:<cache>      HASH  totals since tracking began ("<model>|<counter>", and the
                                          lookup latency histogram "|lat|<le>"): Prometheus counters
    cacheops:tracked                HASH  cache name -> JSON {kind, library, since, last_flush}
"""

from __future__ import annotations

ENTRY_PREFIX = b"cacheops:hit:"
MINUTE_PREFIX = b"cacheops:hitrate:m:"
HOUR_PREFIX = b"cacheops:hitrate:h:"
TOTALS_PREFIX = b"cacheops:hitrate:t:"
BUCKET_PREFIX = b"cacheops:hitrate:"  # every bucket and totals hash starts with this
TRACKED = b"cacheops:tracked"

MINUTE_RETENTION = 24 * 3600  # seconds a minute bucket is kept
HOUR_RETENTION = 90 * 24 * 3600  # seconds an hour bucket is kept
ENTRY_IDLE_SECONDS = 30 * 24 * 3600  # an entry without expiry: its record goes this long after its last activity

# Fields of an entry record
HITS = "hits"
LAST_HIT = "last_hit"  # unix ms
WRITTEN = "written"  # unix ms of the write the tracker saw (update / store)
PROMPT = "prompt"  # the human text (record_prompts="text")
SYSTEM = "system"  # the system message text, when there is one
PROMPT_SHA256 = "prompt_sha256"  # sha256 of the prompt text (record_prompts="hash" or "text")
MODEL = "model"
CACHE = "cache"
INPUT_TOKENS = "input_tokens"  # the usage of the cached generation: what each hit saves
OUTPUT_TOKENS = "output_tokens"
LAST_DISTANCE = "last_distance"  # semantic caches: vector distance of the last hit

# Bucket / totals counters ("<bucket>|<model>|<counter>", totals "<model>|<counter>")
C_HITS = "hits"
C_MISSES = "misses"
C_INPUT_SAVED = "input_saved"  # input tokens the hits did not send
C_OUTPUT_SAVED = "output_saved"
C_ESTIMATED = "estimated"  # hits whose saved tokens are an estimate (the generation had no usage)
COUNTERS = (C_HITS, C_MISSES, C_INPUT_SAVED, C_OUTPUT_SAVED, C_ESTIMATED)
LATENCY_BOUNDS_US = (100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000)
LATENCY_FIELD = "|lat|"  # totals: "|lat|<le>" cumulative counts, "|lat|sum_us", "|lat|count"
UNKNOWN_MODEL = "unknown"


def entry_record_key(entry_key: str | bytes) -> bytes:
    raw = entry_key.encode("utf-8") if isinstance(entry_key, str) else entry_key
    return ENTRY_PREFIX + raw


def bucket_key(prefix: bytes, cache: str) -> bytes:
    return prefix + cache.encode("utf-8")


def is_tracker_key(key: bytes) -> bool:
    return key.startswith(ENTRY_PREFIX) or key.startswith(BUCKET_PREFIX) or key == TRACKED

"""Bulk TTL changes: select (evict's selectors) -> plan (preview) -> back up the old expiries ->
compare-and-set -> operations log.

Three changes, each doing only what it says:
  - set (--ttl 7d): every selected entry expires that long from now (the preview counts how many
    are lengthened, shortened, or get a TTL they did not have);
  - cap (--ttl-max 1d): only entries that would live longer (or forever) are shortened to the cap;
    none is ever lengthened;
  - persist (--persist): the selected entries no longer expire.
Entries that are not selected, and keys no layout recognised as cache entries, are never touched.

The selection is evict's (selection.py + evict.plan: the same selectors, candidate streams and
preview). The plan then reads each selected entry's absolute expiry (PEXPIRETIME) and keeps the
entries whose expiry changes in a spool file (memory stays flat). Execute backs up each batch's old
expiries (fsync) before a compare-and-set script (expire_cas.lua) changes them: an entry whose
expiry is no longer the one the preview saw (the app refreshed its TTL, or rewrote it) is left
alone and counted. The entry's companion keys (its cacheops tag hash, a layout's companions) get
the same expiry, as they share the entry's life (the hit tracker's record of an entry that no longer
expires gets the tracker's own idle expiry instead). `cacheops restore BACKUP` puts the old expiries
back (only where the expiry is still the one this run set).

On a Redis Cluster the same steps run per hash slot (expire_cas.py): each expiry is read, and
judged, against the clock of the node holding the entry.
"""

from __future__ import annotations

import base64
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from cacheops_track.keys import ENTRY_IDLE_SECONDS

from ..errors import ConnectionFailed, UsageError
from ..layouts import Context
from ..ownkeys import HIT_RECORD_PREFIX, cluster_tag_key, legacy_tag_key_on_cluster, tag_key
from ..server import permissions
from ..server.slots import NodeLost
from . import evict, oplog
from .backup import TTL_BACKUP_VERSION, BackupWriter, default_backup_path
from .expire_cas import CHANGED_MEANWHILE, DONE, ExpiryChange, ExpirySetter
from .selection import Selection, batched

SET, CAP, PERSIST = "set", "cap", "persist"
ACTION = "expire"
BATCH = 500  # entries backed up (one fsync) and changed (one script call) per step
KINDS = ("lengthen", "shorten", "add_ttl", "remove_ttl", "unchanged", "gone")

Progress = Callable[[int], None]


@dataclass
class TtlChange:
    mode: str  # set / cap / persist
    seconds: float | None = None
    text: str | None = None  # as given ("7d")

    def __post_init__(self):
        if self.mode not in (SET, CAP, PERSIST):
            raise UsageError(f"unknown TTL change {self.mode!r}")
        if self.mode != PERSIST and (self.seconds is None or self.seconds < 1):
            raise UsageError("a TTL must be at least 1s (use --persist to remove the TTL)")

    @property
    def ms(self) -> int | None:
        return None if self.seconds is None else int(self.seconds * 1000)

    def describe(self) -> dict:
        if self.mode == PERSIST:
            return {"persist": True}
        return {"ttl" if self.mode == SET else "ttl_max": self.text or f"{self.seconds:g}s"}

    def new_expiry(self, now_ms: int) -> int:
        """The absolute expiry (ms) this change gives, from now; -1 for none."""
        return -1 if self.mode == PERSIST else now_ms + (self.ms or 0)

    def kind(self, seen: int, now_ms: int) -> str:
        """What the change does to an entry whose expiry is `seen` (absolute ms, -1 none)."""
        if self.mode == PERSIST:
            return "unchanged" if seen == -1 else "remove_ttl"
        if seen == -1:
            return "add_ttl"
        remaining = seen - now_ms
        ms = self.ms or 0  # set for --ttl and --ttl-max
        if self.mode == CAP:
            return "shorten" if remaining > ms else "unchanged"
        if ms == remaining:
            return "unchanged"
        return "lengthen" if ms > remaining else "shorten"


@dataclass
class ExpirePlan:
    """The preview: the selection (evict's plan: counts per cache, a sample) and what the change
    does to each selected entry's TTL; the entries to change are spooled, not held."""

    selection: evict.Plan
    change: TtlChange
    counts: Counter = field(default_factory=Counter)
    per_cache: Counter = field(default_factory=Counter)  # entries to change, per cache
    _spool: Any = field(default=None, repr=False)  # a TemporaryFile of spooled lines

    @property
    def total(self) -> int:
        """Entries whose TTL would change."""
        return sum(self.per_cache.values())

    def entries(self) -> Iterator[tuple[bytes, int, list[bytes], str]]:
        """(key, the expiry the preview saw, companion keys, cache) of every entry to change."""
        if self._spool is None:
            return
        self._spool.seek(0)
        for line in self._spool:
            key, seen, companions, cache = orjson.loads(line)
            yield base64.b64decode(key), seen, [base64.b64decode(c) for c in companions], cache

    def close(self) -> None:
        self.selection.close()
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def to_dict(self) -> dict:
        return {
            **self.selection.to_dict(),
            "change": self.change.describe(),
            "to_change": self.total,
            "ttl_changes": {k: self.counts[k] for k in KINDS},
            "to_change_per_cache": dict(self.per_cache.most_common()),
        }


@dataclass
class ExpireResult:
    plan: ExpirePlan
    changed: int = 0
    changed_meanwhile: int = 0  # the app set another expiry since the preview: left alone
    gone: int = 0  # expired or deleted since the preview
    unchanged: int = 0  # --ttl-max: came within the cap by itself since the preview
    per_cache: Counter = field(default_factory=Counter)
    backup: str | None = None
    event_id: str | None = None  # the operations log event (`cacheops history`)
    actor: dict | None = None
    seconds: float = 0.0

    def counts(self) -> dict:
        return {
            "selected": self.plan.selection.total,
            "changed": self.changed,
            "changed_meanwhile": self.changed_meanwhile,
            "gone": self.gone,
            "unchanged": self.unchanged + self.plan.counts["unchanged"],
        }

    def to_dict(self) -> dict:
        return {
            "selectors": self.plan.selection.selection.describe(),
            "change": self.plan.change.describe(),
            **self.counts(),
            "per_cache": dict(self.per_cache.most_common()),
            "backup": self.backup,
            "event_id": self.event_id,
            "audit_id": self.event_id,  # the same id under its earlier name, for scripts that read it
            "actor": self.actor,
            "seconds": round(self.seconds, 3),
        }


def plan(
    client: redis.Redis,
    selection: Selection,
    change: TtlChange,
    ctx: Context | None = None,
    sample_size: int = evict.SAMPLE_SIZE,
) -> ExpirePlan:
    """Select as evict does, then read every selected entry's expiry; nothing is changed."""
    selected = evict.plan(client, selection, ctx, sample_size=sample_size)
    result = ExpirePlan(selected, change, _spool=tempfile.TemporaryFile())  # noqa: SIM115 (lives in the plan)
    setter = ExpirySetter(client)
    try:
        for chunk in batched(selected.selected(), BATCH):
            seen_all, nows = setter.expiries([key for key, _, _ in chunk])
            lines = []
            for (key, _, info), seen, now in zip(chunk, seen_all, nows):
                if seen == -2:
                    result.counts["gone"] += 1
                    continue
                kind = change.kind(seen, now)
                result.counts[kind] += 1
                if kind == "unchanged":
                    continue
                result.per_cache[info.cache] += 1
                companions = own_companions(key, setter.cluster) + [
                    c.encode("utf-8") for c in info.companion_keys or []
                ]
                lines.append(
                    orjson.dumps(
                        [
                            base64.b64encode(key).decode(),
                            seen,
                            [base64.b64encode(c).decode() for c in companions],
                            info.cache,
                        ]
                    )
                )
            if lines:
                result._spool.write(b"\n".join(lines) + b"\n")
    except BaseException:
        result.close()
        raise
    return result


def own_companions(key: bytes, cluster: bool) -> list[bytes]:
    """The cacheops keys that share an entry's life: its tag hash (on a cluster, in the entry's slot,
    and under the one-server name where an earlier cacheops left it) and its hit-tracker record."""
    if not cluster:
        return [tag_key(key), HIT_RECORD_PREFIX + key]
    legacy = legacy_tag_key_on_cluster(key)
    return [cluster_tag_key(key), *([legacy] if legacy is not None else []), HIT_RECORD_PREFIX + key]


def execute(
    client: redis.Redis,
    the_plan: ExpirePlan,
    backup_path: Path | str | None = None,
    server: str | None = None,
    on_progress: Progress | None = None,
) -> ExpireResult:
    """Back up the old expiries, then change each entry's expiry if it is still the one the preview saw."""
    started = time.monotonic()
    actor = oplog.whoami(client)
    result = ExpireResult(the_plan, actor=actor.to_dict())
    change = the_plan.change
    header = {
        "version": TTL_BACKUP_VERSION,
        "kind": "ttl",
        "created_at": time.time(),
        "server": server,
        "actor": actor.to_dict(),
        "selectors": the_plan.selection.selection.describe(),
        "change": change.describe(),
    }
    first = next(the_plan.entries(), None)
    if first is not None:  # before the backup file is created: a refused user changes nothing
        permissions.require(client, ACTION, ["scripts", "expire", "oplog"], under=first[0])
    writer = BackupWriter(Path(backup_path) if backup_path else default_backup_path(ACTION), header)
    result.backup = str(writer.path)
    setter = ExpirySetter(client)
    started_id = None
    try:
        started_id = oplog.begin(client, ACTION, actor, the_plan.selection.selection.describe(), result.backup)
        for chunk in batched(the_plan.entries(), BATCH):
            _change_batch(setter, writer, change, chunk, result)
            if on_progress:
                on_progress(len(chunk))
    except NodeLost as exc:
        raise ConnectionFailed(
            f"{exc}. {result.changed:,} TTLs were changed before that, every old one in the backup "
            f"{result.backup} (`cacheops restore` puts them back); once a replica has taken over, run the "
            "same expire again to finish it"
        ) from None
    finally:
        writer.close()
        result.seconds = time.monotonic() - started
        result.event_id = oplog.record(
            client,
            ACTION,
            actor,
            the_plan.selection.selection.describe(),
            result.counts(),
            result.backup,
            extra={"change": change.describe(), "seconds": round(result.seconds, 3)},
            started=started_id,
        )
    return result


def _change_batch(
    setter: ExpirySetter, writer: BackupWriter, change: TtlChange, chunk: list, result: ExpireResult
) -> None:
    # the entries' own expiries are read again only for the time of the node holding each
    entries = [key for key, _, _, _ in chunk]
    companions = [c for _, _, comps, _ in chunk for c in comps]
    expiries, nows = setter.expiries(entries + companions)
    companion_seen = iter(expiries[len(entries) :])
    changes: list[ExpiryChange] = []
    caches = []
    for (key, seen, comps, cache), now in zip(chunk, nows):
        olds = [next(companion_seen) for _ in comps]
        new = change.new_expiry(now)
        if change.mode == CAP and seen != -1 and seen <= new:
            result.unchanged += 1  # its own TTL ran down within the cap since the preview
            continue
        # only companions that exist are changed and backed up (a missing one stays missing)
        present = [(c, old) for c, old in zip(comps, olds) if old != -2]
        writer.add_ttl(key, seen, new, present, cache)
        changes.append(ExpiryChange(key, seen, new, [(c, _companion_expiry(c, new, now)) for c, _ in present]))
        caches.append(cache)
    writer.commit()  # the old expiries are on disk before any is changed
    for cache, status in zip(caches, setter.run(changes)):
        if status == DONE:
            result.changed += 1
            result.per_cache[cache] += 1
        elif status == CHANGED_MEANWHILE:
            result.changed_meanwhile += 1
        else:
            result.gone += 1


def _companion_expiry(companion: bytes, new: int, now: int) -> int:
    """A companion expires with its entry, but the hit tracker's record of an entry that no longer
    expires goes after the tracker's idle time, as the tracker itself does (never unbounded)."""
    if new == -1 and companion.startswith(HIT_RECORD_PREFIX):
        return now + ENTRY_IDLE_SECONDS * 1000
    return new

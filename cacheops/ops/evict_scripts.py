"""evict's two server-side scripts and how they are called: the atomic read of the keys about to be
deleted with their backup copies (evict_read.lua), and compare-and-unlink (evict_unlink.lua).

EvictScripts calls them on one server. ClusterEvictScripts gives the same reads and deletes on a
Redis Cluster, where a script's keys must share one hash slot: the keys are grouped by slot, one
script call per group, the calls for each primary sent in one pipeline (server/slots.py). An entry's
cacheops tag hash lives in its slot (ownkeys.cluster_tag_key) and is read and deleted with it in the
same call; what lives in other slots (tags an earlier cacheops left under the one-server name, the
hit tracker's record, a layout's companion keys) is read beside the atomic read, backed up with the
entry, and deleted right after it, only once the entry itself was deleted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from cacheops_track.keys import TRACKED

from ..errors import PermissionDenied
from ..ownkeys import HIT_RECORD_PREFIX, TAG_PREFIX, cluster_tag_key, legacy_tag_key_on_cluster
from ..server.keyspace import DEFAULT_ELIDE, PREVIEW_LIMIT, RawRecord
from ..server.scripting import Script
from ..server.slots import NodeLost, NodePipelines, slot_groups
from .backup import SavedKey, fields_digest

READ_SCRIPT = Script(Path(__file__).with_name("evict_read.lua"), prelude=True, read_only=True)
UNLINK_SCRIPT = Script(Path(__file__).with_name("evict_unlink.lua"))
SLOT_SLICE = 125  # keys per script call on a cluster (evict's WATCH_SLICE on one server)


@dataclass
class KeyRead:
    """One key as the atomic read found it, with what its backup line needs."""

    rec: RawRecord
    copy: bytes | None  # what is backed up: the DUMP, or a RedisJSON document's JSON (None: gone)
    copy_format: str  # "dump" | "json" (backup.SavedKey.format)
    hash_digest: str | None
    tags: dict[str, str]
    tag: SavedKey | None  # the entry's cacheops tag hash, if it has one
    unchanged: bool = False  # the value is the one the preview judged (then it was not sent back)
    hit: SavedKey | None = None  # the entry's hit-tracker record (cacheops_track), if it has one
    now_ms: int | None = None  # on a cluster: the time of the node read (its PTTL is relative to it)
    elsewhere: list[SavedKey] = field(default_factory=list)  # cluster: cacheops keys in other slots

    @property
    def key(self) -> bytes:
        return self.rec.key

    @property
    def pttl(self) -> int:
        return self.rec.pttl

    @property
    def own_keys(self) -> list[SavedKey]:
        """The cacheops keys that go and come back with the entry (tag hashes, hit record)."""
        return [k for k in (self.tag, self.hit) if k is not None] + self.elsewhere


class PartialUnlink(Exception):
    """Deletes stopped part-way (a lost primary): `codes` for the keys whose outcome is known
    (None where not), `error` what stopped them."""

    def __init__(self, codes: list[int | None], error: Exception):
        super().__init__(str(error))
        self.codes, self.error = codes, error


class EvictScripts:
    """The two server-side scripts execute() needs, loaded once. Refused scripts are a clear error:
    an eviction that cannot re-check and delete atomically does not run."""

    def __init__(self, client: redis.Redis, node: redis.Redis | None = None):
        """node: where a keyless call runs (a cluster client cannot route one); default the client."""
        self.client = client
        try:
            self.reader = READ_SCRIPT.bind(client)
            self.unlinker = UNLINK_SCRIPT.bind(client)
            # an empty read settles EVALSHA_RO or EVALSHA before commands are built for pipelines
            probe = READ_SCRIPT.bind(node) if node is not None else self.reader
            probe.probe(args=(PREVIEW_LIMIT, "", TAG_PREFIX))
            self.reader.read_only = probe.read_only
        except redis.ResponseError as exc:
            raise PermissionDenied(
                f"evict needs server-side scripts (EVAL/EVALSHA/SCRIPT LOAD) to re-check and "
                f"delete atomically, and the server refused: {exc}"
            ) from None

    def read_command(
        self,
        keys: list[bytes],
        limit: int,
        expected: list[str] | None = None,
        types: list[str] | None = None,
        tag_names: list[bytes] | None = None,
    ) -> list:
        """The atomic read of each key with its backup copy (evict_read.lua); a key whose value
        digest equals its `expected` one is unchanged (parse_read). `types`: what the preview saw.
        `tag_names`: each key's tag hash in its slot (a cluster); else the one-server names."""
        blank = [""] * len(keys)
        prefixes = ["", ""] if tag_names is not None else [TAG_PREFIX, HIT_RECORD_PREFIX]
        return self.reader.command(
            keys,
            [limit, ",".join(DEFAULT_ELIDE), *prefixes, *(expected or blank), *(types or blank), *(tag_names or [])],
        )

    def read(
        self, keys: list[bytes], limit: int, expected: list[str] | None = None, types: list[str] | None = None
    ) -> list[KeyRead]:
        reply = self.client.execute_command(*self.read_command(keys, limit, expected, types))
        return self.parse_read(keys, reply, limit, expected)

    @staticmethod
    def parse_read(
        keys: list[bytes],
        reply: list,
        limit: int,
        expected: list[str] | None = None,
        tag_names: list[bytes] | None = None,
    ) -> list[KeyRead]:
        out = []
        items = iter(reply)
        expected = expected or [""] * len(keys)
        names = tag_names or [TAG_PREFIX + key for key in keys]
        for (
            key,
            kind,
            pttl,
            value,
            size,
            truncated,
            copy,
            copy_format,
            unchanged,
            digest,
            tag_flat,
            tag_dump,
            tag_pttl,
            hit_dump,
            hit_pttl,
            judged,
            tag_name,
        ) in zip(keys, *[items] * 14, expected, names):
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            copy_format = "json" if copy_format == b"json" else "dump"
            if kind == "hash" and isinstance(value, list):
                value = dict(zip(value[::2], value[1::2]))
            elif copy_format == "json" and copy:
                value = copy[:limit]  # the document is sent once, as the backup copy
            rec = RawRecord(key, kind, pttl, None, value or None, None if size < 0 else size, bool(truncated))
            if copy_format == "json" and copy and judged and record_digest(rec) == judged:
                unchanged, rec.value = 1, None  # its digest is compared here, not on the server
            tags = _tags(tag_flat)
            tag = SavedKey(tag_name, tag_dump, tag_pttl) if tag_dump else None
            hit = SavedKey(HIT_RECORD_PREFIX + key, hit_dump, hit_pttl) if hit_dump else None
            out.append(
                KeyRead(
                    rec,
                    copy or None,
                    copy_format,
                    digest.decode() if isinstance(digest, bytes) else None,
                    tags,
                    tag,
                    bool(unchanged),
                    hit,
                )
            )
        return out

    def unlink(self, items: list[tuple[bytes, str, str, list[bytes]]]) -> list[int]:
        """Compare-and-unlink: (key, sha1 of its backup copy, copy format, companion keys) ->
        1 deleted (with its companions), 0 gone already, -1 changed since it was read."""
        keys: list[bytes] = []
        argv: list = []
        for key, sha, copy_format, comps in items:
            keys.append(key)
            keys.extend(comps)
            argv.extend([sha, copy_format, len(comps)])
        return self.unlinker(keys, argv)


class ClusterEvictScripts(EvictScripts):
    """The same calls on a Redis Cluster: grouped by hash slot, one pipeline per primary."""

    def __init__(self, client):
        super().__init__(client, client.get_redis_connection(client.get_primaries()[0]))
        self.cluster: RedisCluster = client
        self.nodes = NodePipelines(client, [READ_SCRIPT, UNLINK_SCRIPT], "the evict")
        self.tracking: bool | None = None  # whether the hit tracker has written here (asked once)

    def read(
        self, keys: list[bytes], limit: int, expected: list[str] | None = None, types: list[str] | None = None
    ) -> list[KeyRead]:
        """The atomic read per slot, and in the same round trip an EXISTS of each entry's cacheops
        keys in other slots (most entries have none); those that exist are read after."""
        expected = expected or [""] * len(keys)
        types = types or [""] * len(keys)
        groups = slot_groups(self.cluster, keys, SLOT_SLICE)
        calls = []
        for group in groups:
            part = [keys[i] for i in group]
            names = [cluster_tag_key(k) for k in part]
            command = self.read_command(part, limit, [expected[i] for i in group], [types[i] for i in group], names)
            calls.append((part[0], command, names))
        elsewhere = self._elsewhere(keys)
        replies, times = self.nodes.run(
            [(key, command) for key, command, _ in calls] + [(name, ["EXISTS", name]) for _, name, _ in elsewhere],
            with_time=True,
        )
        out: list[KeyRead] = [None] * len(keys)  # type: ignore[list-item]  # every slot filled below
        for group, (_, _, names), reply, now in zip(groups, calls, replies, times):
            if isinstance(reply, Exception):
                raise reply
            part = [keys[i] for i in group]
            for i, read in zip(group, self.parse_read(part, reply, limit, [expected[i] for i in group], names)):
                read.now_ms = now
                out[i] = read
        found = [
            (out[i], name, is_tags)
            for (i, name, is_tags), there in zip(elsewhere, replies[len(calls) :])
            if there == 1 and out[i].copy is not None
        ]
        if found:
            self._read_elsewhere(found)
        return out

    def _elsewhere(self, keys: list[bytes]) -> list[tuple[int, bytes, bool]]:
        """(index of the entry, name, is it tags) of the cacheops keys an entry may have in other
        slots: its tags under the one-server name (an earlier cacheops), and its hit record where
        the hit tracker has recorded any cache (cacheops:tracked): without it there are none."""
        tracking = self._tracking()
        out = []
        for i, key in enumerate(keys):
            legacy = legacy_tag_key_on_cluster(key)
            if legacy is not None:
                out.append((i, legacy, True))
            if tracking:
                out.append((i, HIT_RECORD_PREFIX + key, False))
        return out

    def _tracking(self) -> bool:
        if self.tracking is None:
            self.tracking = bool(self.cluster.exists(TRACKED))
        return self.tracking

    def _read_elsewhere(self, found: list[tuple[KeyRead, bytes, bool]]) -> None:
        """DUMP and PTTL (and a tag hash's fields, merged under the entry's own, which win) of the
        entries' cacheops keys found in other slots."""
        commands: list[tuple[bytes, list]] = []
        for _, name, is_tags in found:
            commands += [(name, ["DUMP", name]), (name, ["PTTL", name])]
            if is_tags:
                commands.append((name, ["HGETALL", name]))
        replies = iter(self.nodes.run(commands)[0])
        for read, name, is_tags in found:
            dump, pttl = next(replies), next(replies)
            fields = next(replies) if is_tags else None
            if not isinstance(dump, bytes):
                continue  # gone in between
            saved = SavedKey(name, dump, pttl if isinstance(pttl, int) else -1)
            if is_tags:
                read.tags = {**_tags(fields), **read.tags}
                read.elsewhere.append(saved)
            else:
                read.hit = saved

    def unlink(self, items: list[tuple[bytes, str, str, list[bytes]]]) -> list[int]:
        """Per slot: the entries with their companions in that slot, atomically; companions in
        other slots are unlinked after, for the entries deleted. PartialUnlink if a primary is lost."""
        keys = [key for key, _, _, _ in items]
        slots = [self.cluster.keyslot(key) for key in keys]
        here = [[c for c in comps if self.cluster.keyslot(c) == slot] for (_, _, _, comps), slot in zip(items, slots)]
        away = [[c for c in comps if self.cluster.keyslot(c) != slot] for (_, _, _, comps), slot in zip(items, slots)]
        groups = slot_groups(self.cluster, keys, SLOT_SLICE)
        commands = []
        for group in groups:
            group_keys: list[bytes] = []
            argv: list = []
            for i in group:
                key, sha, copy_format, _ = items[i]
                group_keys += [key, *here[i]]
                argv += [sha, copy_format, len(here[i])]
            commands.append((keys[group[0]], self.unlinker.command(group_keys, argv)))
        error: Exception | None = None
        try:
            replies, _ = self.nodes.run(commands)
        except NodeLost as lost:
            replies, error = lost.replies, lost
        codes: list[int | None] = [None] * len(items)
        for group, reply in zip(groups, replies):
            if isinstance(reply, Exception):
                error = error or reply
            elif reply is not None:
                for i, code in zip(group, reply):
                    codes[i] = code
        rest = [(c, ["UNLINK", c]) for i, code in enumerate(codes) if code == 1 for c in away[i]]
        if rest:
            try:
                self.nodes.run(rest)
            except NodeLost as lost:
                error = error or lost
        if error is not None:
            raise PartialUnlink(codes, error)
        return codes  # type: ignore[return-value]  # every code known when nothing failed


def _tags(flat) -> dict[str, str]:
    """A tag hash's fields as HGETALL gives them (a dict, or a flat list from a script) as text."""
    if isinstance(flat, list):
        flat = dict(zip(flat[::2], flat[1::2]))
    if not isinstance(flat, dict):
        return {}
    items = flat.items()
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in items}


def record_digest(rec: RawRecord) -> str:
    """A digest of a record as read: its type and bounded value (hash fields as sorted per-field
    digests, vectors by length). The same as evict_read.lua's value_digest, so the server can tell
    an unchanged key without sending its value back."""
    head = rec.type.encode() + b"\n"
    value = rec.value
    if isinstance(value, dict):
        return hashlib.sha1(head + fields_digest(value)).hexdigest()
    if isinstance(value, bytes):
        return hashlib.sha1(head + value).hexdigest()
    return hashlib.sha1(head).hexdigest()

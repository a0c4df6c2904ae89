"""Backups of evicted entries (JSON lines) and `restore`, which puts them back exactly.

Fidelity comes from Redis itself: each line holds the key's DUMP (value bytes, hash fields,
vectors, encoding) and its expiry; RESTORE re-creates the identical key, and a semantic cache's
index picks it up again on its own. A RedisJSON document is saved as the document itself (what
JSON.GET returns; evict reads it anyway to re-check it, and a DUMP would cost as much again) and
put back with JSON.SET, which gives the identical document. Companion keys (the entry's cacheops
tag hash, a layout's companion keys) are saved on the same line and come back with it. DUMP
payloads are Redis' own checksummed format, read back only by RESTORE: nothing is ever unpickled.

File format (one JSON document per line):
  {"format": "cacheops-backup", "version": 2, "created_at": ..., "server": ..., "selectors": {...}}
  {"key": "...", "dump": "<base64>", "pttl_ms": 5000, "expires_at_ms": 1790000000000, "sha1": "...",
   "layout": ..., "cache": ..., "model": ..., "prompt": ..., "answer": ..., "tags": {...},
   "companions": [{"key": ..., "dump": ..., "pttl_ms": ..., "expires_at_ms": ...}]}
  {"key": "...", "json": "<the document>", ...}      (a RedisJSON document; "json_b64" if not UTF-8)
  {"not_deleted": "<key>", "sha1": "...", "reason": "changed" | "gone"}
        (that version was backed up but not deleted: restore skips it)
A `cacheops expire` backup (version 3, "kind": "ttl") saves expiries, not values:
  {"ttl_of": "<key>", "expires_at_ms": <the old expiry, null for none>, "set_expires_at_ms": <what
   expire set, null for none>, "cache": ..., "companions": [{"key": ..., "expires_at_ms": ...}]}
  restore puts the old expiry back where the key's expiry is still the one expire set.
"sha1" is the sha1 of the saved copy (the DUMP bytes, or the document's bytes). Binary keys are
written as "key_b64" instead of "key". Expiry is kept as an absolute server time, so a restored
entry expires when it would have, had it never been evicted. Version 1 files (DUMPs only) restore too.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis

from .. import faults
from ..errors import CacheopsError, NotFound, UsageError
from ..ownkeys import cluster_tag_key, tag_key
from ..paths import state_dir
from ..server import permissions
from ..server.scripting import Script, is_busy_key
from ..server.topology import is_cluster
from . import oplog
from .expire_cas import DONE, ExpiryChange, ExpirySetter

FORMAT = "cacheops-backup"
VERSION = 2  # 2: RedisJSON documents saved as "json" (version 1 readers would skip them)
TTL_BACKUP_VERSION = 3  # 3: expire's backups of expiries ("ttl_of" lines; older readers would skip them)
RESTORE_BATCH = 500


def default_backup_path(action: str = "evict") -> Path:
    folder = state_dir() / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"{action}-{stamp}-{os.getpid()}.jsonl"
    n = 1
    while path.exists():  # two evictions in the same second
        n += 1
        path = folder / f"{action}-{stamp}-{os.getpid()}-{n}.jsonl"
    return path


def key_fields(key: bytes, name: str = "key") -> dict:
    try:
        return {name: key.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_b64": base64.b64encode(key).decode()}


def key_from(doc: dict, name: str = "key") -> bytes:
    if name in doc:
        return doc[name].encode("utf-8")
    return base64.b64decode(doc[f"{name}_b64"])


def dump_sha1(dump: bytes) -> str:
    return hashlib.sha1(dump).hexdigest()


def server_time_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def fields_digest(fields: dict) -> bytes:
    """A hash's fields, order-independent: the sorted sha1s of each field written as
    <len>:<name><len>:<value> (a value read as its length, an int, is written as that number).
    evict_read.lua's value_digest is the same formula on the server."""
    parts = []
    for name, value in fields.items():
        value = value if isinstance(value, bytes) else str(value).encode()
        parts.append(hashlib.sha1(b"%d:%s%d:%s" % (len(name), name, len(value), value)).hexdigest())
    return "".join(sorted(parts)).encode()


def hash_digest(fields: dict) -> str:
    """The digest of a hash's fields a backup line keeps (restore compares it before overwriting)."""
    return hashlib.sha1(fields_digest(fields)).hexdigest()


@dataclass
class SavedKey:
    key: bytes
    copy: bytes  # the saved copy: a DUMP payload, or with format "json" the RedisJSON document
    pttl_ms: int  # -1: no expiry
    digest: str | None = None  # hashes: hash_digest of the fields
    format: str = "dump"  # "dump" | "json"

    def to_dict(self, now_ms: int) -> dict:
        out = key_fields(self.key)  # one dict built in place: this runs once per evicted key
        if self.format == "json":
            try:
                out["json"] = self.copy.decode("utf-8")
            except UnicodeDecodeError:
                out["json_b64"] = base64.b64encode(self.copy).decode()
        else:
            out["dump"] = base64.b64encode(self.copy).decode()
        out["pttl_ms"] = self.pttl_ms
        out["expires_at_ms"] = None if self.pttl_ms < 0 else now_ms + self.pttl_ms
        if self.digest:
            out["hash_digest"] = self.digest
        return out


def saved_copy(doc: dict) -> tuple[bytes, str] | None:
    """(copy, format) of a backup line's saved key; None if the line saves none."""
    if "dump" in doc:
        return base64.b64decode(doc["dump"]), "dump"
    if "json" in doc:
        return doc["json"].encode("utf-8"), "json"
    if "json_b64" in doc:
        return base64.b64decode(doc["json_b64"]), "json"
    return None


class BackupWriter:
    """Appends backup lines; each batch is flushed and fsynced before anything in it is deleted."""

    def __init__(self, path: Path | str, header: dict):
        self.path = Path(path).expanduser()
        if self.path.exists() and self.path.stat().st_size > 0:
            raise UsageError(f"backup file {self.path} already exists; choose another --backup PATH")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # cached answers may be private
        except OSError as exc:
            raise UsageError(
                f"cannot write the backup {self.path}: {exc.strerror}; choose another --backup PATH"
            ) from None
        self._file = os.fdopen(fd, "wb")
        self._pending: list[bytes] = []  # lines of the current batch: one write per commit
        self.entries = 0
        self._write({"format": FORMAT, "version": VERSION, **header})
        self.commit()

    def _write(self, doc: dict) -> None:
        self._pending.append(orjson.dumps(doc, default=str))

    def add(self, saved: SavedKey, now_ms: int, info_json: bytes, companions: list[SavedKey]) -> None:
        """One entry's line: its saved copy, expiry, companions, and the fields of `info_json` (a
        JSON object: layout, cache, model, prompt, answer, ...), spliced in as they were serialised."""
        doc = saved.to_dict(now_ms)
        doc["sha1"] = dump_sha1(saved.copy)
        if companions:
            doc["companions"] = [c.to_dict(now_ms) for c in companions]
        line = orjson.dumps(doc, default=str)
        if len(info_json) > 2:  # not "{}": both are orjson objects, so "{a}" + "{b}" -> "{a,b}"
            line = line[:-1] + b"," + info_json[1:]
        self._pending.append(line)
        self.entries += 1

    def add_ttl(self, key: bytes, old: int, new: int, companions: list[tuple[bytes, int]], cache: str) -> None:
        """An expiry about to change (expire): old and new absolute ms (-1: none), and each
        companion key's old expiry."""
        doc = {
            **key_fields(key, "ttl_of"),
            "expires_at_ms": None if old == -1 else old,
            "set_expires_at_ms": None if new == -1 else new,
            "cache": cache,
        }
        if companions:
            doc["companions"] = [
                {**key_fields(c), "expires_at_ms": None if when == -1 else when} for c, when in companions
            ]
        self._write(doc)
        self.entries += 1

    def not_deleted(self, key: bytes, sha1: str, reason: str) -> None:
        """The version of `key` backed up above (sha1 of its DUMP) was not deleted after all.
        Written after the delete; the next commit() puts it on disk."""
        self._write({**key_fields(key, "not_deleted"), "sha1": sha1, "reason": reason})

    def commit(self) -> None:
        if self._pending:
            self._pending.append(b"")
            self._file.write(b"\n".join(self._pending))
            self._pending = []
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self.commit()
            self._file.close()


# -- restore ------------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    path: str
    header: dict
    restored: int = 0
    companions_restored: int = 0
    identical: int = 0  # already there with the same bytes
    kept_newer: int = 0  # a different value exists now (the app wrote it again): left alone
    overwritten: int = 0  # --force replaced a different value
    expired: int = 0  # its expiry passed since the backup: it would be gone by now anyway
    not_deleted: int = 0  # backed up but never deleted (changed or gone at delete time)
    ttls_restored: int = 0  # expire backups: old expiries put back
    ttls_kept: int = 0  # expire backups: the expiry changed since expire set it (or the key is gone): left alone
    dry_run: bool = False
    conflicts: list[str] = field(default_factory=list)  # a sample of kept keys

    def to_dict(self) -> dict:
        return {
            "backup": self.path,
            "restored": self.restored,
            "companions_restored": self.companions_restored,
            "identical": self.identical,
            "kept_newer": self.kept_newer,
            "overwritten": self.overwritten,
            "expired": self.expired,
            "not_deleted": self.not_deleted,
            "ttls_restored": self.ttls_restored,
            "ttls_kept": self.ttls_kept,
            "dry_run": self.dry_run,
            "conflicts": self.conflicts,
            "selectors": self.header.get("selectors"),
        }


def read_backup(path: Path | str) -> tuple[dict, Iterator[dict]]:
    """(header, entry lines). A one-line CacheopsError for a missing or foreign file."""
    path = Path(path).expanduser()
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise NotFound(f"no backup file {path}; `cacheops history` lists the backups of past evictions") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    first = handle.readline()
    try:
        header = orjson.loads(first)
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        handle.close()
        raise UsageError(f'{path} is not a cacheops backup (its first line has no "format": "{FORMAT}")')
    if header.get("version", 0) > TTL_BACKUP_VERSION:
        handle.close()
        raise UsageError(f"{path} is a version {header['version']} backup; upgrade cacheops to restore it")

    def lines() -> Iterator[dict]:
        with handle:
            for number, line in enumerate(handle, start=2):
                if not line.strip():
                    continue
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise CacheopsError(
                        f"{path}:{number}: not valid JSON (a truncated backup?); lines before it were processed"
                    ) from None

    return header, lines()


def restore(
    client: redis.Redis, path: Path | str, force: bool = False, dry_run: bool = False, on_progress=None, actor=None
) -> RestoreResult:
    """Put a backup's entries back: identical bytes and expiry. An existing key with other content
    was written after the eviction (the app cached a fresh answer): it is kept unless force.
    On a Redis Cluster the batch's commands each name one key: the cluster pipeline sends each
    primary its own (a RedisJSON document goes back through a one-key script, in its slot)."""
    header, _ = read_backup(path)
    # Keys backed up but then not deleted (they changed or vanished at delete time) must not be
    # resurrected: one pass to learn them (a short list), one to restore.
    skip: set[tuple[bytes, str | None]] = set()
    first: bytes | None = None
    for doc in read_backup(path)[1]:
        if "not_deleted" in doc or "not_deleted_b64" in doc:
            skip.add((key_from(doc, "not_deleted"), doc.get("sha1")))
        elif first is None and saved_copy(doc) is not None:
            first = key_from(doc)
    if not dry_run and first is not None:
        permissions.require(client, "restore", ["restore", "oplog"], under=first)
    result = RestoreResult(str(path), header, dry_run=dry_run, not_deleted=len(skip))
    started_id = None
    if not dry_run:
        actor = actor or oplog.whoami(client)
        started_id = oplog.begin(client, "restore", actor, header.get("selectors") or {}, str(path))
    batch: list[dict] = []
    ttl_batch: list[dict] = []
    for doc in read_backup(path)[1]:
        if "ttl_of" in doc or "ttl_of_b64" in doc:
            ttl_batch.append(doc)
            if len(ttl_batch) >= RESTORE_BATCH:
                _restore_ttls(client, ttl_batch, dry_run, result)
                ttl_batch = []
            continue
        if saved_copy(doc) is None or (key_from(doc), doc.get("sha1")) in skip:
            continue
        batch.append(doc)
        if len(batch) >= RESTORE_BATCH:
            _restore_batch(client, batch, force, dry_run, result)
            if on_progress:
                on_progress(len(batch))
            batch = []
    if batch:
        _restore_batch(client, batch, force, dry_run, result)
        if on_progress:
            on_progress(len(batch))
    if ttl_batch:
        _restore_ttls(client, ttl_batch, dry_run, result)
    if started_id is not None:
        counts = {k: v for k, v in result.to_dict().items() if isinstance(v, int) and not isinstance(v, bool)}
        oplog.record(
            client,
            "restore",
            actor,
            header.get("selectors") or {},
            counts,
            str(path),
            extra={"force": force},
            started=started_id,
        )
    return result


def _restore_batch(client: redis.Redis, docs: list[dict], force: bool, dry_run: bool, result: RestoreResult) -> None:
    now_ms = server_time_ms(client)
    keys = [key_from(d) for d in docs]
    copies = [_copy_of(d) for d in docs]
    restore_json = _RESTORE_JSON.bind(client, load=False)  # loaded once, if a JSON document comes
    pipe = client.pipeline(transaction=False)
    for key, (_, fmt) in zip(keys, copies):
        if fmt == "json":
            pipe.execute_command("JSON.GET", key)
        else:
            pipe.dump(key)
    current = [
        None if isinstance(r, Exception) and not client.exists(k) else r
        for k, r in zip(keys, pipe.execute(raise_on_error=False))
    ]
    pipe = client.pipeline(transaction=False)
    for doc, key, existing, (dump, fmt) in zip(docs, keys, current, copies):
        expires = doc.get("expires_at_ms")
        if expires is not None and expires <= now_ms:
            result.expired += 1
            continue
        replace = False
        if existing is not None:
            if existing == dump or (doc.get("hash_digest") and _hash_digest_of(client, key) == doc["hash_digest"]):
                result.identical += 1
                continue
            if not force:
                result.kept_newer += 1
                if len(result.conflicts) < 20:
                    result.conflicts.append(key.decode("utf-8", "backslashreplace"))
                continue
            replace = True
            result.overwritten += 1
        else:
            result.restored += 1
        if dry_run:
            continue
        _queue_restore(pipe, restore_json, key, dump, fmt, expires, replace)
        for comp in doc.get("companions", []):
            comp_expires = comp.get("expires_at_ms")
            comp_copy = saved_copy(comp)
            if comp_copy is None or (comp_expires is not None and comp_expires <= now_ms):
                continue
            # A companion (tag hash) belongs to the entry being put back: its saved state wins.
            _queue_restore(
                pipe, restore_json, _companion_here(client, key, key_from(comp)), *comp_copy, comp_expires, True
            )
            result.companions_restored += 1
    if not dry_run and len(pipe):
        for reply in pipe.execute(raise_on_error=False):
            if isinstance(reply, Exception):
                text = str(reply)
                if is_busy_key(text):  # the app wrote the key between our check and RESTORE: keep it
                    result.restored -= 1
                    result.kept_newer += 1
                    continue
                raise CacheopsError(f"RESTORE failed: {text} (is the backup from a newer Redis version?)")
    if not dry_run:
        faults.reached("restore.batch")


def _restore_ttls(client: redis.Redis, docs: list[dict], dry_run: bool, result: RestoreResult) -> None:
    """Put expire's old expiries back, each only where the key's expiry is still the one expire set
    (expire_cas: compare-and-set, per hash slot on a cluster). An old expiry that has passed since
    ends the entry now, as it would have ended had its TTL never been changed."""

    def ms(value) -> int:
        return -1 if value is None else int(value)

    if dry_run:
        pipe = client.pipeline(transaction=False)
        for doc in docs:
            pipe.execute_command("PEXPIRETIME", key_from(doc, "ttl_of"))
        for doc, now in zip(docs, pipe.execute()):
            if now != -2 and now == ms(doc.get("set_expires_at_ms")):
                result.ttls_restored += 1
            else:
                result.ttls_kept += 1
        return
    changes = []
    for doc in docs:
        entry = key_from(doc, "ttl_of")
        companions = [
            (_companion_here(client, entry, key_from(c)), ms(c.get("expires_at_ms"))) for c in doc.get("companions", [])
        ]
        changes.append(ExpiryChange(entry, ms(doc.get("set_expires_at_ms")), ms(doc.get("expires_at_ms")), companions))
    for status in ExpirySetter(client, "the restore").run(changes):
        if status == DONE:
            result.ttls_restored += 1
        else:
            result.ttls_kept += 1


def _companion_here(client, entry: bytes, name: bytes) -> bytes:
    """Where a saved companion goes back: its own name, except a tag hash saved on a Redis Cluster
    (in its entry's slot) put back on one server, which reads tags under the one-server name."""
    if not is_cluster(client) and name == cluster_tag_key(entry):
        return tag_key(entry)
    return name


def _copy_of(doc: dict) -> tuple[bytes, str]:
    copy = saved_copy(doc)
    if copy is None:
        raise CacheopsError(
            f"backup line for {doc.get('key')!r} holds no saved copy (dump or json): is the file damaged?"
        )
    return copy


def _hash_digest_of(client: redis.Redis, key: bytes) -> str | None:
    fields = client.hgetall(key) if client.type(key) == b"hash" else None
    return hash_digest(fields) if fields else None


# RedisJSON documents go back through restore_json.lua (EVALSHA, loaded on first use).
_RESTORE_JSON = Script(Path(__file__).with_name("restore_json.lua"))


def _queue_restore(
    pipe, restore_json, key: bytes, dump: bytes, fmt: str, expires_at_ms: int | None, replace: bool
) -> None:
    if fmt == "json":
        pipe.execute_command(
            *restore_json.command(
                [key], [dump, "" if expires_at_ms is None else expires_at_ms, "1" if replace else "0"]
            )
        )
        return
    args = ["RESTORE", key, expires_at_ms or 0, dump]
    if expires_at_ms is not None:
        args.append("ABSTTL")
    if replace:
        args.append("REPLACE")
    pipe.execute_command(*args)

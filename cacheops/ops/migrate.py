"""Re-embed a semantic cache with a new embedding model, side by side: plan (preview) -> execute -> log.

When an app changes its embedding model, the vectors its semantic cache stored no longer fit: other
dims break the index, same dims silently match the wrong neighbours (drift). A migration copies every
entry of the source cache to a new cache (the target) with a vector computed by the new model:

- Side by side, never in place. The source is only read (with the no-touch client: no TTL refresh,
  no LRU bump); the app switches its config to the target name and the new model, then the old
  cache is evicted (`cacheops evict --cache SOURCE`, with its backup).
- The target index is the source index's own schema, read back by RedisVL (SearchIndex.from_existing,
  the same parse RedisVL's SemanticCache compares against at start-up), renamed to the target and
  with the new dims/dtype. Its prefix is the target name, as langchain-redis RedisSemanticCache(name=T)
  and RedisVL SemanticCache(name=T) both create it, so the app starts on it without a schema error.
- The target name must not share keys with another index: index prefixes are plain string prefixes
  ("llmcache" also indexes "llmcache_v2:*", docs/layouts.md 10), so a target that extends, or is extended
  by, another index's prefix is refused; the default puts the model first ("all-minilm-l6-v2-llmcache").
- Entries keep their id (sha256 of the prompt [+ filters], which both libraries compute without the
  cache name), so the target key is "<target>:<id>", the key the library computes for that prompt.
  Every field but the vector is copied byte for byte; the vector is the new model's embedding of
  the stored `prompt` field, which is exactly the text the library embeds (LangChain's serialised
  message list, RedisVL's raw prompt: see SemanticLayout.embedded_text). The remaining TTL is kept.
- Which libraries can be migrated is each layout's say (SemanticLayout.migration).
- Streaming: a reader thread SCANs the source and reads a batch ahead (pipelined HGETALL + PTTL, and
  the target's updated_at) while the main thread embeds the current batch (migrations are
  embedding-bound) and writes it in one MULTI/EXEC. At most a few batches are held.
- Idempotent and resumable: an entry whose target copy is at least as new (updated_at) is skipped,
  so a re-run after an interruption only does what is left, and a re-run after the app kept writing
  to the source catches up; an entry the app rewrote in the target meanwhile is never overwritten.
- On a Redis Cluster: the source is scanned on every primary; a batch is written as one MULTI/EXEC
  per hash slot (a transaction cannot span slots), so each entry still lands whole. The target
  index is created on the node its name's slot belongs to, as the app's library creates it; without
  a search coordinator it covers that node's entries only, which the plan says (notes), as doctor
  does for every semantic cache there.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import redis

from .. import faults
from ..errors import TargetConflict, UsageError
from ..inspect.catalog import EntryFilter, build_context, iter_entries, require_cache
from ..layouts import DEFAULT_SEMANTIC, Context, Entry, SemanticLayout, classify, semantic_layout, semantic_layouts
from ..layouts.base import hex_tail
from ..semantic.vectorizers import EmbeddingSpec, load_vectorizer, parse_spec
from ..server import permissions
from ..server.indexes import IndexInfo, search_client
from ..server.keyspace import RawRecord, glob_escape
from ..server.readahead import read_ahead
from ..server.topology import is_cluster, search_fans_out, slot_owner
from . import oplog

ACTION = "migrate-embeddings"
DEFAULT_BATCH = 64
SCAN_COUNT = 1000
QUEUE_DEPTH = 3  # batches read ahead of the embedder: enough to hide Redis latency, memory stays flat
NUMPY_DTYPES = {"float32": "<f4", "float64": "<f8", "float16": "<f2"}

Progress = Callable[[int], None]


@dataclass
class MigrationPlan:
    """What a migration would do: shown before anything is written (--dry-run stops here)."""

    source: str  # the cache's key prefix
    layout: str  # the id of the source's semantic layout
    library: str
    source_index: str
    vector_field: str
    source_dims: int
    source_dtype: str
    distance_metric: str
    algorithm: str
    filterable_fields: list[str]
    target: str
    target_dims: int
    target_dtype: str
    to_spec: str
    from_spec: str | None
    entries: int  # hashes under "<source>:<64 hex>" at plan time
    target_exists: bool  # resuming: the target index is already there, with this schema
    target_docs: int
    schema: dict = field(repr=False)  # the target's RedisVL IndexSchema.to_dict()
    notes: list[str] = field(default_factory=list)  # what the preview should also say

    @property
    def dims_change(self) -> str:
        return f"{self.source_dims} {self.source_dtype} -> {self.target_dims} {self.target_dtype}"

    def index_fields(self) -> list[tuple[str, str]]:
        """(name, description) of every field of the target index."""
        out = []
        for f in self.schema["fields"]:
            attrs = f.get("attrs", {})
            if f["type"] == "vector":
                desc = (
                    f"vector {attrs.get('algorithm', '').upper()} {attrs.get('datatype', '').upper()} "
                    f"dim={attrs.get('dims')} {attrs.get('distance_metric', '').upper()}"
                )
            else:
                desc = f["type"]
            out.append((f["name"], desc))
        return out

    def to_dict(self) -> dict:
        doc = asdict(self)
        doc.pop("schema")
        doc["index_fields"] = dict(self.index_fields())
        return doc


@dataclass
class MigrationResult:
    plan: MigrationPlan
    migrated: int = 0  # entries written to the target (new, or newer in the source than in the target)
    refreshed: int = 0  # of those, entries that were already in the target but older
    skipped: int = 0  # already in the target, at least as new: left alone
    expired: int = 0  # their TTL ran out before they could be written
    not_entries: int = 0  # keys under the source prefix that are not entries of this cache
    conflicts: int = 0  # a target key exists but is not a hash: never overwritten
    seconds: float = 0.0
    embed_seconds: float = 0.0  # time the embedder spent embedding (the rest is Redis and waiting)
    created_index: bool = False
    event_id: str | None = None  # the operations log event (`cacheops history`)
    actor: dict | None = None

    @property
    def rate(self) -> float:
        return self.migrated / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        doc = {k: v for k, v in asdict(self).items() if k != "plan"}
        doc["entries_per_second"] = round(self.rate, 1)
        doc["target"] = self.plan.target
        doc["audit_id"] = self.event_id  # the same id under its earlier name, for scripts that read it
        return doc


def migratable(layout_id: str | None) -> SemanticLayout | None:
    """The semantic layout of that id if migrate-embeddings can copy its entries (its layout says so)."""
    layout = semantic_layout(layout_id)
    return layout if layout is not None and layout.migration else None


def app_settings(plan: MigrationPlan) -> str:
    """How the app opens the target cache after the migration, in its library's own terms."""
    layout = semantic_layout(plan.layout) or DEFAULT_SEMANTIC
    return layout.app_settings(plan.target, plan.to_spec, bool(plan.filterable_fields))


def model_slug(spec: EmbeddingSpec) -> str:
    """'sentence-transformers/all-MiniLM-L6-v2' -> 'all-minilm-l6-v2' (a readable name part)."""
    last = spec.model.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "-", last.lower()).strip("-") or spec.provider


def default_target(source: str, spec: EmbeddingSpec) -> str:
    """The model first: '<source>-<model>' would extend the source's prefix and bleed into its index."""
    return f"{model_slug(spec)}-{source}"


def overlaps(a: str, b: str) -> bool:
    """Whether an index over prefix a would cover keys of prefix b, or the other way round."""
    return a.startswith(b) or b.startswith(a)


def plan(
    client: redis.Redis,
    cache: str,
    to_spec: str,
    from_spec: str | None = None,
    target: str | None = None,
    vectorizer=None,
    ctx: Context | None = None,
) -> MigrationPlan:
    """Check everything and describe the migration; writes nothing. `vectorizer` defaults to the
    one SPEC names (loaded offline: the preview proves the model is there)."""
    to = parse_spec(to_spec)
    frm = parse_spec(from_spec) if from_spec else None
    ctx = ctx or build_context(client, learn=False)
    index = ctx.index_for_prefix(cache)
    found = next(iter_entries(client, ctx, EntryFilter(cache=cache), limit=1, full=False), None)
    first = found if isinstance(found, Entry) else None
    if first is None and index is None:
        require_cache(client, ctx, cache)  # raises, naming the caches there are
    if first is not None and migratable(first.layout) is None:
        what = "a semantic cache this command supports" if first.kind == "semantic" else "a semantic cache"
        libraries = [layout.library for layout in semantic_layouts() if layout.migration]
        raise UsageError(
            f"cache {cache!r} is a {first.library} cache, not {what}: migrate-embeddings re-embeds "
            f"{', '.join(libraries[:-1])} and {libraries[-1]} caches"
        )
    if index is None or index.vector is None:
        raise UsageError(
            f"cache {cache!r} has no vector search index over its prefix: there is no schema to "
            f"migrate (is it a semantic cache?)"
        )
    layout = migratable(first.layout) if first is not None else DEFAULT_SEMANTIC
    assert layout is not None  # checked above
    source_schema = _existing_schema(search_client(client, index), index.name)
    vectorizer = vectorizer if vectorizer is not None else load_vectorizer(to)
    dims, dtype = int(vectorizer.dims), str(getattr(vectorizer, "dtype", "float32") or "float32").lower()
    if dtype not in NUMPY_DTYPES:
        raise UsageError(f"vector dtype {dtype!r} of {to.text!r} is not supported (float16/32/64)")
    target = target or default_target(cache, to)
    schema = target_schema(source_schema, target, index.vector.name, dims, dtype)
    target_index = _check_target(client, ctx.indexes, cache, index, target, schema)
    vec = index.vector
    core = {"prompt", "response", "inserted_at", "updated_at", vec.name}
    return MigrationPlan(
        source=cache,
        layout=layout.id,
        library=layout.library,
        source_index=index.name,
        vector_field=vec.name,
        source_dims=vec.dims,
        source_dtype=vec.dtype.lower(),
        distance_metric=vec.metric,
        algorithm=vec.algorithm,
        filterable_fields=[f for f in index.fields if f not in core],
        target=target,
        target_dims=dims,
        target_dtype=dtype,
        to_spec=to.text,
        from_spec=frm.text if frm else None,
        entries=count_entry_keys(client, cache),
        target_exists=target_index is not None,
        target_docs=target_index.num_docs if target_index else 0,
        schema=schema,
        notes=_cluster_notes(client, target),
    )


def _cluster_notes(client: redis.Redis, target: str) -> list[str]:
    if not is_cluster(client) or search_fans_out(client):
        return []
    node = slot_owner(client, target)
    return [
        f"this Redis Cluster's search module has no coordinator: the target index {target!r} will live "
        f"on {node.name} (its name's hash slot) and cover that node's entries only, so the app's lookups "
        f"will see one shard's entries, as they do with the source index (`cacheops doctor` warns); every "
        f"entry is still copied and re-embedded on its own shard"
    ]


def _existing_schema(client: redis.Redis, name: str) -> dict:
    from redisvl.index import SearchIndex

    return SearchIndex.from_existing(name, redis_client=client).schema.to_dict()


def target_schema(source_schema: dict, target: str, vector_field: str, dims: int, dtype: str) -> dict:
    """The source index's schema renamed to the target, over the target's own prefix, new dims/dtype."""
    schema = {**source_schema, "index": {**source_schema["index"], "name": target, "prefix": target}}
    fields = []
    for f in source_schema["fields"]:
        if f["type"] == "vector" and f["name"] == vector_field:
            f = {**f, "attrs": {**f["attrs"], "dims": dims, "datatype": dtype}}
        fields.append(f)
    schema["fields"] = fields
    return schema


def _check_target(
    client: redis.Redis, indexes: list[IndexInfo], source: str, source_index: IndexInfo, target: str, schema: dict
) -> IndexInfo | None:
    """The existing target index (resume) or None; TargetConflict when the name cannot be used."""
    if not target or target != target.strip() or target.endswith(":"):
        raise UsageError(f"--target {target!r} is not a usable cache name (no surrounding spaces or trailing colon)")
    if overlaps(target, source):
        raise TargetConflict(
            f"target {target!r} and source {source!r} are string prefixes of one another, so "
            f"their indexes would index each other's keys (prefix bleed): pick a name that does "
            f"not start with {source!r}, e.g. the default (omit --target)"
        )
    existing = None
    for idx in indexes:
        if idx.name == target:
            existing = idx
            continue
        for prefix in idx.prefixes:
            if overlaps(target, prefix.rstrip(":")):
                raise TargetConflict(
                    f"target {target!r} overlaps index {idx.name!r} (prefix {prefix!r}): one would "
                    f"index the other's keys (prefix bleed); pick another --target"
                )
    if existing is not None:
        live = _existing_schema(search_client(client, existing), target)
        if live != schema:
            raise TargetConflict(
                f"index {target!r} already exists with another schema (dims, fields or prefix): "
                f"pick another --target, or drop that index if it is a failed earlier attempt"
            )
    foreign = first_foreign_key(client, target)
    if foreign is not None:
        raise TargetConflict(
            f"key {foreign!r} under prefix {target!r} is not an entry of a cache named {target!r}; "
            f"an index over that prefix would take it in: pick another --target"
        )
    return existing


def _entry_key(key: bytes, prefix: bytes) -> bool:
    """'<prefix>:<64 hex>': the shape of a semantic cache entry of exactly this cache."""
    return len(key) == len(prefix) + 65 and key.startswith(prefix) and hex_tail(key, 64) == 65


def count_entry_keys(client: redis.Redis, cache: str) -> int:
    prefix = cache.encode()
    n = 0
    for key in client.scan_iter(match=glob_escape(cache) + ":*", count=SCAN_COUNT, _type="hash"):
        n += _entry_key(key, prefix)
    return n


def first_foreign_key(client: redis.Redis, target: str) -> str | None:
    """A hash under the raw prefix `target` (what an index over it covers) that is not shaped like
    one of its entries, or None."""
    prefix = target.encode()
    for key in client.scan_iter(match=glob_escape(target) + "*", count=SCAN_COUNT, _type="hash"):
        if not _entry_key(key, prefix):
            return key.decode("utf-8", "backslashreplace")
    return None


# -- execute ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    target_key: bytes
    fields: dict
    pttl: int  # ms at read time; -1 none
    read_at: float  # time.monotonic() of the read
    refresh: bool  # the target has an older copy


@dataclass
class _Batch:
    items: list[_Item]
    keys: int  # entry-shaped source keys this batch accounts for (progress, as plan.entries counts them)
    counts: Counter


def execute(
    client: redis.Redis,
    plan: MigrationPlan,
    vectorizer=None,
    batch: int = DEFAULT_BATCH,
    on_progress: Progress | None = None,
    ctx: Context | None = None,
) -> MigrationResult:
    """Create the target index (if new), copy and re-embed every entry, log the event."""
    if batch < 1:
        raise UsageError("--batch must be at least 1")
    vectorizer = vectorizer if vectorizer is not None else load_vectorizer(plan.to_spec)
    result = MigrationResult(plan)
    permissions.require(
        client, "migrate-embeddings", ["hash", "expire", "transactions", "oplog"], under=f"{plan.target}:"
    )
    started = time.monotonic()
    actor = oplog.whoami(client)
    selectors = {"cache": plan.source, "target": plan.target, "to": plan.to_spec, "from": plan.from_spec}
    started_id = oplog.begin(client, ACTION, actor, selectors)
    result.created_index = _ensure_index(client, plan)
    ctx = ctx or build_context(client, learn=False)
    batches = read_ahead(_read_batches(client, plan, ctx, batch), depth=QUEUE_DEPTH, name="cacheops-migrate-reader")
    for got in batches:
        _write_batch(client, plan, vectorizer, got, result)
        faults.reached("migrate.batch")
        if on_progress:
            on_progress(got.keys)
    result.seconds = time.monotonic() - started
    result.actor = actor.to_dict()
    result.event_id = oplog.record(
        client,
        ACTION,
        actor,
        selectors=selectors,
        counts={
            "migrated": result.migrated,
            "refreshed": result.refreshed,
            "skipped": result.skipped,
            "expired": result.expired,
            "not_entries": result.not_entries,
            "conflicts": result.conflicts,
        },
        backup=None,
        extra={
            "source_index": plan.source_index,
            "dims": plan.dims_change,
            "library": plan.layout,
            "created_index": result.created_index,
            "seconds": round(result.seconds, 3),
        },
        started=started_id,
    )
    return result


def _ensure_index(client: redis.Redis, plan: MigrationPlan) -> bool:
    """Create the target index unless it exists (with this schema: checked again, it may be new).
    On a Redis Cluster it is created through a plain client of the node owning the name's hash slot:
    where FT.CREATE lands without a coordinator (any node forwards it with one)."""
    from redisvl.index import SearchIndex

    node = slot_owner(client, plan.target).client
    index = SearchIndex.from_dict(plan.schema, redis_client=node)
    if index.exists():
        if _existing_schema(node, plan.target) != plan.schema:
            raise TargetConflict(f"index {plan.target!r} appeared meanwhile with another schema: pick another --target")
        return False
    index.create(overwrite=False)
    return True


def _read_batches(client, plan: MigrationPlan, ctx: Context, batch: int) -> Iterator[_Batch]:
    """SCAN the source and read each batch whole (fields, PTTL, the target copy's updated_at). Run
    by read_ahead, a batch or more ahead of the embedder."""
    prefix = plan.source.encode()
    pending: list[bytes] = []
    # scan_iter: one cursor on one server, every primary's in turn on a cluster
    for key in client.scan_iter(match=glob_escape(plan.source) + ":*", count=SCAN_COUNT, _type="hash"):
        pending.append(key)
        if len(pending) >= batch:
            yield _read_batch(client, plan, ctx, prefix, pending)
            pending = []
    if pending:
        yield _read_batch(client, plan, ctx, prefix, pending)


def _read_batch(client, plan: MigrationPlan, ctx: Context, prefix: bytes, keys: list[bytes]) -> _Batch:
    counts: Counter = Counter()
    keys_ = [k for k in keys if _entry_key(k, prefix)]
    counts["not_entries"] += len(keys) - len(keys_)
    pipe = client.pipeline(transaction=False)
    for key in keys_:
        pipe.hgetall(key)
        pipe.pttl(key)
    replies = pipe.execute(raise_on_error=False)
    read_at = time.monotonic()
    found = []
    for i, key in enumerate(keys_):
        fields, pttl = replies[2 * i], replies[2 * i + 1]
        if not isinstance(fields, dict) or not fields or not isinstance(pttl, int) or pttl == -2:
            counts["expired"] += 1  # gone since SCAN returned it
            continue
        entry = classify(RawRecord(key, "hash", pttl, None, fields), ctx, full=False)
        if (
            entry is None
            or migratable(getattr(entry, "layout", None)) is None
            or entry.cache != plan.source
            or b"prompt" not in fields
        ):
            counts["not_entries"] += 1
            continue
        found.append((key, fields, pttl))
    pipe = client.pipeline(transaction=False)
    target = plan.target.encode() + b":"
    for key, _fields, _pttl in found:
        pipe.hget(target + key[len(prefix) + 1 :], "updated_at")
    current = pipe.execute(raise_on_error=False) if found else []
    items = []
    for (key, fields, pttl), there in zip(found, current):
        if isinstance(there, Exception):  # WRONGTYPE: not a hash; never overwritten
            counts["conflicts"] += 1
            continue
        if there is not None and not _newer(fields.get(b"updated_at"), there):
            counts["skipped"] += 1
            continue
        items.append(_Item(target + key[len(prefix) + 1 :], fields, pttl, read_at, there is not None))
    return _Batch(items, len(keys_), counts)


def _newer(source_updated, target_updated) -> bool:
    """Whether the source copy was written after the target copy (both float seconds as bytes)."""
    try:
        return float(source_updated) > float(target_updated)
    except (TypeError, ValueError):
        return False  # unknown: the target copy stands


def _write_batch(client, plan: MigrationPlan, vectorizer, got: _Batch, result: MigrationResult) -> None:
    import numpy as np

    for name, n in got.counts.items():
        setattr(result, name, getattr(result, name) + n)
    if not got.items:
        return
    # The stored prompt field is exactly the text the library embedded (and embeds at lookup).
    texts = [item.fields[b"prompt"].decode("utf-8", "replace") for item in got.items]
    t0 = time.monotonic()
    vectors = np.asarray(vectorizer.embed_many(texts, batch_size=len(texts)), dtype=NUMPY_DTYPES[plan.target_dtype])
    result.embed_seconds += time.monotonic() - t0
    field_name = plan.vector_field.encode()
    # A batch lands whole or not at all: one MULTI/EXEC (on a cluster, one per hash slot).
    transactions: dict[int, redis.client.Pipeline] = {}
    now = time.monotonic()
    written = refreshed = 0
    for item, vector in zip(got.items, vectors):
        remaining = item.pttl - int((now - item.read_at) * 1000) if item.pttl > 0 else None
        if remaining is not None and remaining <= 0:
            result.expired += 1
            continue
        slot = client.keyslot(item.target_key) if is_cluster(client) else 0
        pipe = transactions.get(slot)
        if pipe is None:
            pipe = transactions[slot] = client.pipeline(transaction=True)
        mapping = dict(item.fields)
        mapping[field_name] = vector.tobytes()
        if item.refresh:
            pipe.delete(item.target_key)  # an older copy: no stale field may survive an HSET merge
        pipe.hset(item.target_key, mapping=mapping)
        if remaining is not None:
            pipe.pexpire(item.target_key, remaining)
        written += 1
        refreshed += item.refresh
    for pipe in transactions.values():
        pipe.execute()
    result.migrated += written
    result.refreshed += refreshed

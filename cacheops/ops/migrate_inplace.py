"""migrate-embeddings --in-place and --flush: the app keeps its cache name.

--in-place re-embeds a semantic cache under its own name, in phases:
  build              the side-by-side migration (migrate.py) into a temporary cache T (the default
                     target name, which never shares a prefix with the source);
  backup             a catch-up pass of build (entries the app wrote meanwhile), then every entry of
                     the source is backed up and deleted (evict's path: the evict backup format, so
                     `cacheops restore` brings the old entries back);
  drop_source_index  the source's index is dropped (FT.DROPINDEX, never its documents);
  move               every entry of T is renamed to the source's key (same entry id, fields, TTL);
  create_index       the source's index is created again with its own schema (name, prefix, fields,
                     metric, algorithm: what the library created for that name) and the new model's
                     dims, and the moved entries are indexed;
  drop_temp_index    T's index is dropped.
--flush backs up and deletes the cache's entries (backup) and drops its index (drop_index): the app
starts cold and creates the index for its new model itself.

Every phase is idempotent, and the phase under way is kept in cacheops:migrate:<cache> (a hash, with
what a re-run needs once the source index is gone: its schema, T, the backups), so a crash or kill
at any point leaves a state a re-run completes; the preview says which phase it resumes. The source
is never FLUSHed; only keys a layout recognised as the cache's entries are deleted or moved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import redis

from .. import faults
from ..errors import NotFound, TargetConflict, UsageError
from ..inspect.catalog import build_context
from ..layouts import Context
from ..ownkeys import MIGRATE_STATE_PREFIX
from ..semantic.vectorizers import parse_spec
from ..server import permissions
from ..server.keyspace import glob_escape
from ..server.topology import refuse_on_cluster
from . import evict, migrate, oplog
from .backup import default_backup_path
from .selection import Selection

IN_PLACE, FLUSH = "in-place", "flush"
PHASES = {
    IN_PLACE: ("build", "backup", "drop_source_index", "move", "create_index", "drop_temp_index"),
    FLUSH: ("backup", "drop_index"),
}
MOVE_BATCH = 500
INDEX_WAIT_SECONDS = 600  # the longest create_index waits for the search module to index the entries

Progress = Callable[[str, int], None]  # (phase, entries done)

# Why the index swap stays off a cluster: the side-by-side migration (no --in-place) runs there.
CLUSTER_REASON = {
    IN_PLACE: "its move renames every entry into another hash slot, which RENAMENX cannot do across slots, "
    "and without a search coordinator the index it recreates covers one shard; the side-by-side "
    "migration (without --in-place) runs there",
    FLUSH: "its backup-and-delete and its index drop are not built for a cluster",
}


def state_key(cache: str) -> bytes:
    return MIGRATE_STATE_PREFIX + cache.encode()


@dataclass
class MigrationState:
    """What a re-run needs, kept in Redis while a migration is under way."""

    cache: str
    mode: str
    phase: str
    source_index: str
    source_schema: dict  # the index as it was (the old dims)
    new_schema: dict | None = None  # the same index with the new model's dims (in-place)
    target: str | None = None  # the temporary side-by-side cache (in-place)
    to_spec: str | None = None
    from_spec: str | None = None
    backups: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)

    def save(self, client: redis.Redis) -> None:
        client.hset(state_key(self.cache), mapping={"state": orjson.dumps(self.__dict__), "phase": self.phase})

    @classmethod
    def load(cls, client: redis.Redis, cache: str) -> MigrationState | None:
        raw = client.hget(state_key(cache), "state")
        return cls(**orjson.loads(raw)) if raw else None

    def clear(self, client: redis.Redis) -> None:
        client.delete(state_key(self.cache))


@dataclass
class InPlacePlan:
    """The preview: what runs, from which phase."""

    cache: str
    mode: str
    state: MigrationState
    resuming: bool  # a run was interrupted: this one resumes it
    entries: int  # entries under the source now
    temp_entries: int  # entries of the temporary cache now (in-place)
    side: migrate.MigrationPlan | None = None  # the build phase's plan, when build is still to do

    @property
    def phases(self) -> tuple[str, ...]:
        return PHASES[self.mode]

    @property
    def needs_model(self) -> bool:
        """Whether a phase still to run embeds (build, and backup's catch-up build)."""
        return self.mode == IN_PLACE and self.state.phase in ("build", "backup")

    @property
    def resume_phase(self) -> str:
        return self.state.phase

    def to_dict(self) -> dict:
        s = self.state
        return {
            "cache": self.cache,
            "mode": self.mode,
            "phases": list(self.phases),
            "resuming": self.resuming,
            "resume_phase": s.phase,
            "started_at": s.started_at,
            "source_index": s.source_index,
            "entries": self.entries,
            "temporary_cache": s.target,
            "temporary_entries": self.temp_entries,
            "to": s.to_spec,
            "from": s.from_spec,
            "backups": s.backups,
            "side_by_side": self.side.to_dict() if self.side else None,
        }


@dataclass
class InPlaceResult:
    plan: InPlacePlan
    phases_run: list[str] = field(default_factory=list)
    migrated: int = 0  # build: entries re-embedded into the temporary cache
    backed_up: int = 0  # backup: source entries backed up and deleted
    moved: int = 0  # move: entries renamed from the temporary cache to the source's name
    kept: int = 0  # move: the source key existed already (written meanwhile): the copy was dropped
    indexed: int = 0  # create_index: documents in the new index
    backups: list[str] = field(default_factory=list)
    event_id: str | None = None  # the operations log event (`cacheops history`)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "cache": self.plan.cache,
            "mode": self.plan.mode,
            "phases_run": self.phases_run,
            "migrated": self.migrated,
            "backed_up": self.backed_up,
            "moved": self.moved,
            "kept": self.kept,
            "indexed": self.indexed,
            "backups": self.backups,
            "event_id": self.event_id,
            "audit_id": self.event_id,  # the same id under its earlier name, for scripts that read it
            "seconds": round(self.seconds, 3),
        }


def with_vector(schema: dict, vector_field: str, dims: int, dtype: str) -> dict:
    """The schema with the vector field's dims and dtype changed, nothing else."""
    fields = [
        {**f, "attrs": {**f["attrs"], "dims": dims, "datatype": dtype}}
        if f["type"] == "vector" and f["name"] == vector_field
        else f
        for f in schema["fields"]
    ]
    return {**schema, "fields": fields}


def index_names(client: redis.Redis) -> set[str]:
    return {n.decode() if isinstance(n, bytes) else str(n) for n in client.execute_command("FT._LIST")}


def count_keys(client: redis.Redis, prefix: str) -> int:
    return sum(
        migrate._entry_key(k, prefix.encode())
        for k in client.scan_iter(match=glob_escape(prefix) + ":*", count=migrate.SCAN_COUNT, _type="hash")
    )


def plan(
    client: redis.Redis,
    cache: str,
    mode: str,
    to_spec: str | None = None,
    from_spec: str | None = None,
    vectorizer=None,
    ctx: Context | None = None,
) -> InPlacePlan:
    """Check and describe; writes nothing. Resumes the migration under way for `cache`, if any."""
    refuse_on_cluster(client, f"migrate-embeddings --{mode}", CLUSTER_REASON[mode])
    ctx = ctx or build_context(client, learn=False)
    state = MigrationState.load(client, cache)
    if state is not None:
        if state.mode != mode:
            raise UsageError(
                f"a --{state.mode} of {cache!r} is under way (phase {state.phase}): finish it first "
                f"(re-run with --{state.mode})"
            )
        if mode == IN_PLACE and to_spec and parse_spec(to_spec).text != state.to_spec:
            raise UsageError(
                f"an in-place migration of {cache!r} to {state.to_spec} is under way (phase {state.phase}): "
                f"finish it with --to {state.to_spec}"
            )
        side = None
        if state.phase == "build":
            assert state.to_spec is not None  # an in-place migration under way records its model
            side = migrate.plan(client, cache, state.to_spec, state.from_spec, state.target, vectorizer, ctx)
        temp = count_keys(client, state.target) if state.target else 0
        return InPlacePlan(cache, mode, state, True, count_keys(client, cache), temp, side)
    if mode == FLUSH:
        index = ctx.index_for_prefix(cache)
        if index is None or index.vector is None:
            if not count_keys(client, cache):
                raise NotFound(f"no semantic cache named {cache!r}: `cacheops caches` lists the caches")
            raise UsageError(f"cache {cache!r} has no vector search index over its prefix: it is not a semantic cache")
        schema = migrate._existing_schema(client, index.name)
        state = MigrationState(cache, FLUSH, "backup", index.name, schema)
        return InPlacePlan(cache, mode, state, False, count_keys(client, cache), 0)
    if not to_spec:
        raise UsageError("--in-place needs --to SPEC, the new embedding model")
    side = migrate.plan(client, cache, to_spec, from_spec, None, vectorizer, ctx)
    source_schema = migrate._existing_schema(client, side.source_index)
    state = MigrationState(
        cache,
        IN_PLACE,
        "build",
        side.source_index,
        source_schema,
        with_vector(source_schema, side.vector_field, side.target_dims, side.target_dtype),
        side.target,
        side.to_spec,
        side.from_spec,
    )
    return InPlacePlan(cache, mode, state, False, side.entries, side.target_docs, side)


def execute(
    client: redis.Redis,
    the_plan: InPlacePlan,
    vectorizer=None,
    batch: int = migrate.DEFAULT_BATCH,
    server: str | None = None,
    on_progress: Progress | None = None,
) -> InPlaceResult:
    """Run the phases from the one the plan resumes, recording each before it starts."""
    refuse_on_cluster(client, f"migrate-embeddings --{the_plan.mode}", CLUSTER_REASON[the_plan.mode])
    started = time.monotonic()
    state = the_plan.state
    result = InPlaceResult(the_plan, backups=list(state.backups))
    phases = the_plan.phases
    runner = _Phases(client, state, result, vectorizer, batch, server, on_progress)
    # before the first write (the resumable state): a refused user changes nothing
    action = f"migrate-embeddings --{the_plan.mode}"
    permissions.require(client, action, ["hash", "oplog"], under=MIGRATE_STATE_PREFIX)
    needs = ["hash", "scripts", "transactions", "unlink", "index"]  # the backup deletes; the index drops
    if the_plan.mode == IN_PLACE:
        needs += ["expire", "rename"]  # the build keeps TTLs; the move renames into the cache's keys
    permissions.require(client, action, needs, under=f"{state.cache}:")
    actor = oplog.whoami(client)
    selectors = {"cache": state.cache, "mode": state.mode, "to": state.to_spec, "from": state.from_spec}
    # a killed run's own trace (its backups are also in the migration state the re-run resumes from)
    started_id = oplog.begin(client, migrate.ACTION, actor, selectors, state.backups[-1] if state.backups else None)
    for phase in phases[phases.index(state.phase) :]:
        state.phase = phase
        state.save(client)
        faults.reached(f"migrate.inplace.{phase}")
        getattr(runner, phase)()
        result.phases_run.append(phase)
    state.clear(client)
    result.seconds = time.monotonic() - started
    result.event_id = oplog.record(
        client,
        migrate.ACTION,
        actor,
        selectors=selectors,
        counts={
            "migrated": result.migrated,
            "backed_up": result.backed_up,
            "moved": result.moved,
            "kept": result.kept,
            "indexed": result.indexed,
        },
        backup=state.backups[-1] if state.backups else None,
        extra={
            "mode": state.mode,
            "backups": state.backups,
            "temporary_cache": state.target,
            "resumed": the_plan.resuming,
            "seconds": round(result.seconds, 3),
        },
        started=started_id,
    )
    return result


class _Phases:
    """One method per phase; each can run again after a crash and finishes what is left."""

    def __init__(self, client, state: MigrationState, result: InPlaceResult, vectorizer, batch, server, on_progress):
        self.client, self.state, self.result = client, state, result
        self.vectorizer, self.batch, self.server = vectorizer, batch, server
        self.on_progress = on_progress

    def progress(self, phase: str, n: int) -> None:
        faults.reached(f"migrate.inplace.{phase}.partial")
        if self.on_progress:
            self.on_progress(phase, n)

    def build(self) -> None:
        s = self.state
        assert s.to_spec is not None  # building re-embeds: the model is known
        side = migrate.plan(self.client, s.cache, s.to_spec, s.from_spec, s.target, self.vectorizer)
        done = migrate.execute(
            self.client, side, self.vectorizer, self.batch, on_progress=lambda n: self.progress("build", n)
        )
        self.result.migrated += done.migrated

    def backup(self) -> None:
        s = self.state
        if s.mode == IN_PLACE and s.source_index in index_names(self.client):
            self.build()  # catch up with what the app wrote since the build
        ctx = build_context(self.client, learn=False)
        selected = evict.plan(self.client, Selection(cache=s.cache), ctx, sample_size=0)
        try:
            if not selected.total:
                return
            path = default_backup_path("migrate")
            s.backups.append(str(path))  # recorded before the first line is written: a rollback needs every file
            s.save(self.client)
            done = evict.execute(
                self.client,
                selected,
                backup_path=path,
                server=self.server,
                on_progress=lambda n: self.progress("backup", n),
                ctx=ctx,
            )
        finally:
            selected.close()
        self.result.backed_up += done.deleted
        self.result.backups = list(s.backups)

    def drop_source_index(self) -> None:
        self._drop(self.state.source_index, self.state.source_schema)

    def drop_index(self) -> None:
        self._drop(self.state.source_index, self.state.source_schema)

    def drop_temp_index(self) -> None:
        assert self.state.target is not None  # in-place: the temporary cache is named
        self._drop(self.state.target, None)

    def _drop(self, name: str, expected: dict | None) -> None:
        """FT.DROPINDEX (never DD: the documents stay), if the index is still there with the schema
        the migration found (a re-run after create_index must not drop the new one)."""
        if name not in index_names(self.client):
            return
        if expected is not None and migrate._existing_schema(self.client, name) != expected:
            return
        self.client.execute_command("FT.DROPINDEX", name)

    def move(self) -> None:
        s = self.state
        assert s.target is not None  # in-place: the temporary cache is named
        source, temp = s.cache.encode() + b":", s.target.encode()
        pending: list[bytes] = []
        cursor = 0
        while True:
            cursor, keys = self.client.scan(
                cursor, match=glob_escape(s.target) + ":*", count=migrate.SCAN_COUNT, _type="hash"
            )
            pending += [k for k in keys if migrate._entry_key(k, temp)]
            while len(pending) >= MOVE_BATCH or (int(cursor) == 0 and pending):
                chunk, pending = pending[:MOVE_BATCH], pending[MOVE_BATCH:]
                self._move_batch(chunk, source, len(temp) + 1)
            if int(cursor) == 0:
                return

    def _move_batch(self, keys: list[bytes], source: bytes, cut: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.renamenx(key, source + key[cut:])
        replies = pipe.execute(raise_on_error=False)
        taken = [key for key, moved in zip(keys, replies) if moved is not True and moved != 1]
        if taken:  # the app wrote that entry meanwhile (it is newer than our copy): the copy goes
            self.client.unlink(*taken)
        self.result.moved += len(keys) - len(taken)
        self.result.kept += len(taken)
        self.progress("move", len(keys))

    def create_index(self) -> None:
        from redisvl.index import SearchIndex

        s = self.state
        if s.source_index in index_names(self.client):
            if migrate._existing_schema(self.client, s.source_index) != s.new_schema:
                raise TargetConflict(
                    f"index {s.source_index!r} was created meanwhile with another schema (did the app start "
                    f"on the old model?): drop it, then re-run to finish the migration"
                )
        else:
            SearchIndex.from_dict(s.new_schema, redis_client=self.client).create(overwrite=False)
        self.result.indexed = self._wait_indexed(s.source_index)

    def _wait_indexed(self, name: str) -> int:
        """Wait until the search module has indexed the moved entries (they are served only then)."""
        from ..server.indexes import parse_ft_info

        deadline = time.monotonic() + INDEX_WAIT_SECONDS
        while True:
            info = parse_ft_info(self.client.execute_command("FT.INFO", name))
            if info.percent_indexed >= 1.0 or time.monotonic() > deadline:
                return info.num_docs
            time.sleep(0.05)

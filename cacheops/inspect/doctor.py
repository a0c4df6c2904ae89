"""Health checks for a Redis that holds LLM caches. Each check is ok / warn / problem; any
problem makes `cacheops doctor` exit non-zero so CI can gate on it."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from ..layouts import Context
from ..ownkeys import OPLOG_STREAM
from ..server import topology
from ..server.scripting import is_no_permission, is_unknown_command
from ..server.serverinfo import ServerInfo, server_info
from .catalog import build_catalog
from .quick_catalog import quick_catalog

OK, WARN, PROBLEM = "ok", "warn", "problem"

# What each cacheops operation sends, as (label, command args for ACL DRYRUN).
NEEDED_COMMANDS = [
    ("scan keys (SCAN)", ["SCAN", "0"]),
    ("read types / TTLs / sizes", ["PTTL", "k"]),
    ("size of entries (MEMORY USAGE)", ["MEMORY", "USAGE", "k"]),
    ("read hashes (HGETALL)", ["HGETALL", "k"]),
    ("read JSON entries (JSON.GET)", ["JSON.GET", "k"]),
    ("list indexes (FT._LIST / FT.INFO)", ["FT.INFO", "i"]),
    ("vector search (FT.SEARCH)", ["FT.SEARCH", "i", "*"]),
    ("fast scan script (EVALSHA_RO)", ["EVALSHA_RO", "0" * 40, "0"]),
    ("access stats (OBJECT FREQ/IDLETIME)", ["OBJECT", "IDLETIME", "k"]),
    ("no-touch reads (CLIENT NO-TOUCH)", ["CLIENT", "NO-TOUCH", "ON"]),
    ("server clock for expiries (TIME)", ["TIME"]),
    ("evict entries (UNLINK)", ["UNLINK", "k"]),
    ("restore backups (RESTORE)", ["RESTORE", "k", "0", "x"]),
    ("operations log (XADD)", ["XADD", OPLOG_STREAM, "*", "f", "v"]),
]
# What cacheops also sends on a Redis Cluster (the client learns the slot map with CLUSTER SLOTS; a
# scan follows failovers and slot migrations with the others: server/cluster_scan.py).
CLUSTER_COMMANDS = [
    ("cluster topology (CLUSTER SLOTS)", ["CLUSTER", "SLOTS"]),
    ("failovers and migrations during a scan (CLUSTER NODES)", ["CLUSTER", "NODES"]),
    ("a migrated slot's keys (CLUSTER GETKEYSINSLOT)", ["CLUSTER", "GETKEYSINSLOT", "0", "1"]),
    ("a migrated slot's key count (CLUSTER COUNTKEYSINSLOT)", ["CLUSTER", "COUNTKEYSINSLOT", "0"]),
]


@dataclass
class Check:
    area: str
    status: str
    message: str
    fix: str = ""

    def to_dict(self) -> dict:
        return {"area": self.area, "status": self.status, "message": self.message, "fix": self.fix}


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    def add(self, area: str, status: str, message: str, fix: str = "") -> None:
        self.checks.append(Check(area, status, message, fix))

    @property
    def problems(self) -> int:
        return sum(c.status == PROBLEM for c in self.checks)

    @property
    def warnings(self) -> int:
        return sum(c.status == WARN for c in self.checks)

    def to_dict(self) -> dict:
        return {"problems": self.problems, "warnings": self.warnings, "checks": [c.to_dict() for c in self.checks]}


def run_doctor(client: redis.Redis, ctx: Context, display_url: str, full: bool = True) -> DoctorReport:
    """full=False: the caches' findings come from the quick catalog (key names for every key,
    values for a sample per cache: counts of unreachable entries are then estimates)."""
    report = DoctorReport()
    info = server_info(client)
    report.add("connection", OK, f"connected to {display_url}")
    version = info.version_tuple
    report.add(
        "server",
        OK if version >= (7, 2) else WARN,
        f"Redis {info.version}",
        "" if version >= (7, 2) else "Redis < 7.2 has no CLIENT NO-TOUCH: inspection bumps LRU/LFU data",
    )
    report.add(
        "no-touch",
        OK if info.no_touch else WARN,
        "inspection uses CLIENT NO-TOUCH" if info.no_touch else "CLIENT NO-TOUCH is not active",
        "" if info.no_touch else "upgrade to Redis >= 7.2 or allow CLIENT NO-TOUCH in the ACL",
    )
    _check_modules(report, info)
    if topology.is_cluster(client):
        _check_cluster_acl(client, report)
    else:
        _check_acl(client, report)
    catalog = build_catalog(client, ctx) if full else quick_catalog(client, ctx)
    if topology.is_cluster(client):
        _check_cluster(client, info, catalog, report)
    else:
        _check_memory_policy(info, catalog, report)
    view = topology.sentinel_view(client)
    if view is not None:
        _check_sentinel(client, view, report)
    _check_indexes(ctx, report)
    for cache in catalog.caches:
        for text in cache.notes:
            status = PROBLEM if ("never be hit" in text or "do not match" in text) else WARN
            report.add(f"cache {cache.name}", status, text)
        if cache.entries and cache.with_ttl == 0:
            report.add(
                f"cache {cache.name}",
                WARN,
                f"{cache.entries} entries never expire: a wrong answer stays until someone evicts it",
                "set a ttl on the cache",
            )
    if not catalog.caches:
        report.add("caches", WARN, "no LLM cache found in this database", "check --db / the URL")
    return report


def _check_modules(report: DoctorReport, info: ServerInfo) -> None:
    """The search and JSON modules; a user who may not run MODULE LIST gets their presence from
    COMMAND INFO (no version), or a warning that it cannot be told, never a false 'no module'."""
    found = {
        "search": info.modules.get("search", info.modules.get("ft")),
        "json": info.modules.get("rejson", info.modules.get("redisjson")),
    }
    missing = {
        "search": ("no search module: semantic caches cannot work", "use Redis 8 / Redis Stack or load redisearch"),
        "json": (
            "no JSON module: langchain-redis RedisCache fails on invoke",
            "use Redis 8 / Redis Stack or load rejson",
        ),
    }
    label = {"search": "search module", "json": "JSON module"}
    for name, version in found.items():
        if not info.modules_source:
            report.add(
                f"module {name}",
                WARN,
                f"{label[name]}: cannot tell (this ACL user may run neither MODULE LIST nor COMMAND INFO)",
                "allow MODULE LIST or COMMAND INFO for this user to check it",
            )
        elif version is None:
            report.add(f"module {name}", PROBLEM, *missing[name])
        elif version or info.modules_source == "MODULE LIST":
            report.add(f"module {name}", OK, f"{label[name]} {version}")
        else:
            report.add(
                f"module {name}", OK, f"{label[name]} loaded (version not shown: this ACL user may not run MODULE LIST)"
            )


def _check_acl(client: redis.Redis, report: DoctorReport, needed=NEEDED_COMMANDS) -> None:
    try:
        user = client.execute_command("ACL", "WHOAMI")
        user = user.decode() if isinstance(user, bytes) else str(user)
    except redis.ResponseError:
        report.add("acl", WARN, "cannot run ACL WHOAMI; permissions not checked")
        return
    missing, unknown = [], False
    for label, args in needed:
        try:
            reply = client.execute_command("ACL", "DRYRUN", user, *args)
        except redis.ResponseError as exc:
            if is_unknown_command(exc) or is_no_permission(exc):
                unknown = True
                break
            continue  # e.g. a module command unknown to this server: reported by the module check
        if reply not in (b"OK", "OK", True):
            missing.append(label)
    if unknown:
        report.add("acl", WARN, f"user {user!r} may not run ACL DRYRUN; permissions not checked")
    elif missing:
        report.add(
            "acl",
            PROBLEM,
            f"user {user!r} lacks: " + "; ".join(missing),
            "grant those commands, e.g. ACL SETUSER <user> +@read +@keyspace +@scripting +unlink +restore +xadd",
        )
    else:
        report.add("acl", OK, f"user {user!r} may run every command cacheops uses")


def _check_memory_policy(info, catalog, report: DoctorReport, area: str = "memory") -> None:
    no_ttl = sum(c.entries - c.with_ttl for c in catalog.caches)
    if info.maxmemory == 0:
        report.add(
            area,
            WARN,
            "no maxmemory set: caches grow until the host runs out of memory",
            "set maxmemory and an eviction policy (allkeys-lru or allkeys-lfu for a cache-only Redis)",
        )
    elif info.policy == "noeviction":
        report.add(
            area,
            PROBLEM,
            f"maxmemory {info.maxmemory} with noeviction: when full, cache writes fail and the app's LLM calls raise",
            "use allkeys-lru / allkeys-lfu, or volatile-* with TTLs",
        )
    elif info.policy.startswith("volatile") and no_ttl:
        report.add(
            area,
            WARN,
            f"policy {info.policy} never evicts the {no_ttl} cache entries without a TTL",
            "give the caches a ttl, or use an allkeys-* policy",
        )
    else:
        report.add(area, OK, f"maxmemory {info.maxmemory} with {info.policy}")


# -- Redis Cluster --------------------------------------------------------------------------------


def _check_cluster_acl(client, report: DoctorReport) -> None:
    """ACLs are per node in a cluster (not replicated): each primary is asked; one line when all agree."""
    per_node = []
    for node in topology.primary_nodes(client):
        node_report = DoctorReport()
        _check_acl(node.client, node_report, NEEDED_COMMANDS + CLUSTER_COMMANDS)
        per_node.append((node.name, node_report.checks[0]))
    if all(check.status == OK for _name, check in per_node):
        report.add("acl", OK, per_node[0][1].message + f", on every primary ({len(per_node)})")
        return
    for name, check in per_node:
        if check.status != OK:
            report.add(f"acl {name}", check.status, check.message, check.fix)


def _check_cluster(client, info, catalog, report: DoctorReport) -> None:
    """Slots covered, shards with their replicas, per-node memory and policy, the search coordinator."""
    state = topology.cluster_state(client)
    served = int(state.get("cluster_slots_ok", 0))
    shards = topology.shards(client)
    healthy = state.get("cluster_state") == "ok" and served == topology.SLOTS
    report.add(
        "cluster",
        OK if healthy else PROBLEM,
        f"cluster_state {state.get('cluster_state', '?')}: {served} of {topology.SLOTS} slots served by "
        f"{len(shards)} primaries, {state.get('cluster_known_nodes', '?')} nodes known"
        + (
            f" ({state.get('cluster_slots_pfail', 0)} slots possibly failing, "
            f"{state.get('cluster_slots_fail', 0)} failed)"
            if not healthy
            else ""
        ),
        "" if healthy else "every slot needs a live primary: check CLUSTER NODES for failed nodes",
    )
    for shard in shards:
        _check_shard(client, shard, report)
    for node in info.nodes:
        _check_memory_policy(node, catalog, report, area=f"memory {node.name}")
    policies = {node.policy for node in info.nodes}
    if len(policies) > 1:
        report.add(
            "memory",
            WARN,
            "the primaries disagree on maxmemory-policy (" + ", ".join(sorted(policies)) + ")",
            "set the same policy on every node (CONFIG SET on each, or the cluster's config)",
        )
    _check_search_coordinator(client, catalog, report)


def _check_shard(client, shard, report: DoctorReport) -> None:
    ranges = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in shard.slots)
    area = f"shard {shard.primary.name}"
    if not shard.replicas:
        report.add(area, WARN, f"slots {ranges}; no replica", "add a replica: if this primary fails, its slots go down")
        return
    primary = topology.replication(topology.node_client(client, shard.primary))
    notes, status = [], OK
    for replica in shard.replicas:
        try:
            facts = topology.replication(topology.node_client(client, replica))
        except redis.RedisError as exc:
            notes.append(f"{replica.name} unreachable ({exc})")
            status = PROBLEM
            continue
        if facts.get("master_link_status") != "up":
            notes.append(f"{replica.name} link {facts.get('master_link_status', '?')}")
            status = PROBLEM
            continue
        lag = int(primary.get("master_repl_offset", 0)) - int(facts.get("slave_repl_offset", 0))
        notes.append(f"{replica.name} in sync" if lag <= 0 else f"{replica.name} {lag} bytes behind")
    report.add(
        area,
        status,
        f"slots {ranges}; replicas: " + "; ".join(notes),
        "" if status == OK else "a replica that is not in sync cannot take over this shard safely",
    )


def _check_search_coordinator(client, catalog, report: DoctorReport) -> None:
    primaries = topology.primary_nodes(client)
    coordinator = topology.has_search_coordinator(primaries[0].client)
    semantic = [c for c in catalog.caches if c.index]
    if coordinator:
        report.add("search coordinator", OK, "present: an index covers every shard's documents")
        return
    if not semantic:
        report.add("search coordinator", OK, "none, and no semantic cache here needs one")
        return
    for cache in semantic:
        idx = next((i for i in catalog.indexes if i.name == cache.index), None)
        where = ", ".join(idx.nodes) if idx and idx.nodes else "no primary"
        indexed = idx.num_docs if idx else 0
        report.add(
            f"cache {cache.name}",
            WARN,
            f"no search coordinator: index {cache.index} lives on {where} and covers {indexed} of the "
            f"{cache.entries} entries; the app's semantic lookups see one shard's entries",
            "use a cluster whose search module has the coordinator (Redis 8 cluster, Redis Software / Cloud), "
            "or keep semantic caches on a Redis that is not clustered",
        )


# -- Sentinel -------------------------------------------------------------------------------------


def _check_sentinel(client, view, report: DoctorReport) -> None:
    """The sentinels answer and agree on the primary, enough of them for a failover (quorum), and
    each replica they list is linked to it and caught up."""
    answered = [(name, facts) for name, facts in view.answers if isinstance(facts, dict)]
    silent = [name for name, facts in view.answers if not isinstance(facts, dict)]
    if not answered:
        report.add("sentinel", PROBLEM, f"no sentinel answers for service {view.service!r}")
        return
    named = sorted({f"{facts['ip']}:{facts['port']}" for _, facts in answered})
    quorum = int(answered[0][1].get("quorum", 0))
    down = any(facts.get("is_sdown") or facts.get("is_odown") for _, facts in answered)
    status = OK
    if len(answered) < quorum or len(named) > 1:
        status = PROBLEM
    elif silent or down:
        status = WARN
    message = (
        f"service {view.service}: {len(answered)} of {len(view.answers)} sentinels answer (quorum {quorum}); "
        + (f"they name primary {named[0]}" if len(named) == 1 else "they disagree on the primary: " + ", ".join(named))
        + (f"; silent: {', '.join(silent)}" if silent else "")
        + ("; a sentinel sees the primary down" if down else "")
    )
    fixes = {
        PROBLEM: "a failover needs a quorum of sentinels that agree: check the sentinels and their network",
        WARN: "check the silent sentinels / the primary",
    }
    report.add("sentinel", status, message, fixes.get(status, ""))
    primary_offset = int(client.info("replication").get("master_repl_offset", 0))
    if not view.replicas:
        report.add("sentinel replicas", WARN, "the sentinels list no live replica: a failover has nowhere to go")
    for name, facts in view.replicas:
        if not isinstance(facts, dict):
            report.add(f"replica {name}", PROBLEM, f"unreachable ({facts})")
        elif facts.get("master_link_status") != "up":
            report.add(f"replica {name}", PROBLEM, f"link to the primary {facts.get('master_link_status', '?')}")
        else:
            lag = primary_offset - int(facts.get("slave_repl_offset", 0))
            report.add(f"replica {name}", OK, "in sync" if lag <= 0 else f"{lag} bytes behind")


def _check_indexes(ctx: Context, report: DoctorReport) -> None:
    # Prefix bleed is reported per cache (catalog notes), where it does harm.
    for idx in ctx.indexes:
        area = f"index {idx.name}"
        if idx.indexing_failures:
            report.add(
                area,
                PROBLEM,
                f"{idx.indexing_failures} documents failed to index"
                + (f" (last error: {idx.last_indexing_error})" if idx.last_indexing_error else "")
                + ": the cache can never return them",
                "evict them, or re-embed them with the model the index now expects",
            )
        elif idx.percent_indexed < 1:
            report.add(area, WARN, f"indexing in progress: {idx.percent_indexed:.0%} done")
        else:
            vec = idx.vector
            detail = f", vectors {vec.dims} x {vec.dtype} {vec.metric}" if vec else ""
            prefixes = ", ".join(idx.prefixes) or "(none)"
            noun = "prefix" if len(idx.prefixes) == 1 else "prefixes"
            report.add(area, OK, f"{idx.num_docs} documents, {noun} {prefixes}{detail}")

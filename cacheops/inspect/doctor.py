"""Health checks for a Redis that holds LLM caches. Each check is ok / warn / problem; any
problem makes `cacheops doctor` exit non-zero so CI can gate on it."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from ..layouts import Context
from ..server.serverinfo import server_info
from .catalog import build_catalog

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
    ("audit trail (XADD)", ["XADD", "cacheops:audit", "*", "f", "v"]),
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


def run_doctor(client: redis.Redis, ctx: Context, display_url: str) -> DoctorReport:
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
    search = info.modules.get("search") or info.modules.get("ft")
    json_mod = info.modules.get("rejson") or info.modules.get("redisjson")
    report.add(
        "module search",
        OK if search else PROBLEM,
        f"search module {search}" if search else "no search module: semantic caches cannot work",
        "" if search else "use Redis 8 / Redis Stack or load redisearch",
    )
    report.add(
        "module json",
        OK if json_mod else PROBLEM,
        f"JSON module {json_mod}" if json_mod else "no JSON module: langchain-redis RedisCache fails on invoke",
        "" if json_mod else "use Redis 8 / Redis Stack or load rejson",
    )
    _check_acl(client, report)
    catalog = build_catalog(client, ctx)
    _check_memory_policy(info, catalog, report)
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


def _check_acl(client: redis.Redis, report: DoctorReport) -> None:
    try:
        user = client.execute_command("ACL", "WHOAMI")
        user = user.decode() if isinstance(user, bytes) else str(user)
    except redis.ResponseError:
        report.add("acl", WARN, "cannot run ACL WHOAMI; permissions not checked")
        return
    missing, unknown = [], False
    for label, args in NEEDED_COMMANDS:
        try:
            reply = client.execute_command("ACL", "DRYRUN", user, *args)
        except redis.ResponseError as exc:
            if "unknown command" in str(exc).lower() or "NOPERM" in str(exc) or "no permission" in str(exc).lower():
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


def _check_memory_policy(info, catalog, report: DoctorReport) -> None:
    no_ttl = sum(c.entries - c.with_ttl for c in catalog.caches)
    if info.maxmemory == 0:
        report.add(
            "memory",
            WARN,
            "no maxmemory set: caches grow until the host runs out of memory",
            "set maxmemory and an eviction policy (allkeys-lru or allkeys-lfu for a cache-only Redis)",
        )
    elif info.policy == "noeviction":
        report.add(
            "memory",
            PROBLEM,
            f"maxmemory {info.maxmemory} with noeviction: when full, cache writes fail and the app's LLM calls raise",
            "use allkeys-lru / allkeys-lfu, or volatile-* with TTLs",
        )
    elif info.policy.startswith("volatile") and no_ttl:
        report.add(
            "memory",
            WARN,
            f"policy {info.policy} never evicts the {no_ttl} cache entries without a TTL",
            "give the caches a ttl, or use an allkeys-* policy",
        )
    else:
        report.add("memory", OK, f"maxmemory {info.maxmemory} with {info.policy}")


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

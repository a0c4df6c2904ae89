"""Every exit code cacheops returns, in one place. The README's table is this list."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # unexpected failure (a bug: please report it)
    USAGE = 2  # bad flags or arguments (Click's own code for usage errors)
    CONNECTION = 3  # server unreachable, TLS failure, timeout
    AUTH = 4  # wrong username or password
    PERMISSION = 5  # the ACL user may not run a command cacheops needs
    MISSING_MODULE = 6  # the server lacks a module (search / JSON) the operation needs
    NOT_FOUND = 7  # nothing matched: no such key, no entry for that prompt, no such cache
    PROBLEMS_FOUND = 8  # doctor found problems, warm could not write some entries (for CI gates)
    CONFIG = 9  # config file / profile invalid
    EMBEDDED_UNAVAILABLE = 10  # --embedded but none running; its wheels are missing or it failed to start
    COLLISIONS_FOUND = 11  # audit: more colliding pairs than --max-collisions (for CI gates)
    MODEL_UNAVAILABLE = 12  # an embedding model, or the package it needs, is not available offline
    TARGET_CONFLICT = 13  # migrate-embeddings: the target name is taken or would share keys with another index
    SUSPECTS_FOUND = 14  # suspects: an entry at or above --fail-on was found (for deploy gates)
    VERIFY_FAILED = 15  # warm --verify: a playbook prompt missed, or was served another answer (for CI gates)
    CHECK_FAILED = 16  # check: the post-deploy gate failed (doctor, warm, verify or audit; for CI gates)
    NOT_REDIS = 17  # something answers at that address, but not in the Redis protocol (HTTP, SSH, ...)
    NO_SUCH_DATABASE = 18  # the database number (URL /N or --db) does not exist on the server
    EVENTS_DISABLED = 20  # hits --follow: the server does not publish the keyspace events it needs
    NOT_ON_CLUSTER = 24  # the command does not run on a Redis Cluster yet (docs/cluster.md)
    TOPOLOGY_CHANGED = 25  # a slot migration during a cluster scan that it could not follow exactly (run it again)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, the shell's convention)


DESCRIPTIONS = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "unexpected error (a bug: please report it)",
    ExitCode.USAGE: "bad command-line usage",
    ExitCode.CONNECTION: "cannot reach the Redis server (address, TLS, timeout)",
    ExitCode.AUTH: "authentication failed (username or password)",
    ExitCode.PERMISSION: "the ACL user lacks a permission cacheops needs",
    ExitCode.MISSING_MODULE: "the server lacks the search or JSON module the operation needs",
    ExitCode.NOT_FOUND: "nothing matched (key, prompt, cache)",
    ExitCode.PROBLEMS_FOUND: "doctor found problems; warm could not write some entries",
    ExitCode.CONFIG: "invalid config file or profile",
    ExitCode.EMBEDDED_UNAVAILABLE: "the embedded Redis is not running (start it with `cacheops demo`) "
    "or could not be started",
    ExitCode.COLLISIONS_FOUND: "audit found more wrong-answer collisions than --max-collisions allows",
    ExitCode.MODEL_UNAVAILABLE: "an embedding model or the package it needs is not available (offline)",
    ExitCode.TARGET_CONFLICT: "migrate-embeddings target exists with another schema, "
    "or its prefix overlaps another index",
    ExitCode.SUSPECTS_FOUND: "suspects found an entry at or above --fail-on",
    ExitCode.VERIFY_FAILED: "warm --verify: a playbook prompt missed or was served another answer",
    ExitCode.CHECK_FAILED: "check: a post-deploy check failed (doctor, warm, verify or the audit)",
    ExitCode.NOT_REDIS: "the service at that address is not a Redis server (wrong port?)",
    ExitCode.NO_SUCH_DATABASE: "the database number (URL /N or --db) does not exist on the server",
    ExitCode.EVENTS_DISABLED: "hits --follow: the server's notify-keyspace-events lacks what it needs "
    "(or --enable-events)",
    ExitCode.NOT_ON_CLUSTER: "the command does not run on a Redis Cluster yet "
    "(nothing was changed; see docs/cluster.md)",
    ExitCode.TOPOLOGY_CHANGED: "a cluster slot migration during the scan could not be followed without risking "
    "a wrong listing (run it again)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}

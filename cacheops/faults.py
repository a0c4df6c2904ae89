"""Fault injection: stop cacheops at a named point, deterministically, for the reliability tests.

    CACHEOPS_FAULT=<point>:<n>[,<point>:<n>...]

makes the process SIGKILL itself (no cleanup, no flush: what `kill -9` or the OOM killer does) the
n-th time it reaches <point>. The points sit where an interruption matters most:

    scan.batch         the scan engine hands over a batch (every listing, evict's preview, ...)
    evict.backed_up    a batch's backup is on disk (fsynced) and nothing of it is deleted yet
    evict.sent         a batch's MULTI/UNLINK/EXECs were sent; their replies are not read yet
                       (one server: a cluster has no MULTI/EXEC step, see ops/evict.py)
    evict.settled      a batch's deletes are confirmed (before the next batch, or the oplog event)
    restore.batch      a restore batch was written back
    warm.written       one entry was written by its cache library
    migrate.batch      one batch was written to the target (MULTI/EXEC)
    migrate.inplace.<phase>          an in-place migration (or flush) starts <phase>
    migrate.inplace.<phase>.partial  a batch of <phase> is done (build, backup)

In-process tests arm a point with any callable instead (restart the server, cut a connection):
ARMED[point] = action. The cost when nothing is armed is one dict lookup per point per batch.
docs/reliability.md describes the tests built on this.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

ENV = "CACHEOPS_FAULT"
POINTS = (
    "scan.batch",
    "evict.backed_up",
    "evict.sent",
    "evict.settled",
    "restore.batch",
    "warm.written",
    "migrate.batch",
    # migrate-embeddings --in-place / --flush (ops/migrate_inplace.PHASES; a test keeps them in step)
    *(
        f"migrate.inplace.{phase}{part}"
        for phase in ("build", "backup", "drop_source_index", "move", "create_index", "drop_temp_index", "drop_index")
        for part in ("", ".partial")
    ),
)

ARMED: dict[str, Callable[[], None]] = {}


def reached(point: str) -> None:
    """Called at each fault point; runs the action armed there, if any."""
    action = ARMED.get(point)
    if action is not None:
        action()


def on_nth(n: int, action: Callable[[], None]) -> Callable[[], None]:
    """An action that runs the n-th time its point is reached (and never again)."""
    seen = 0

    def maybe() -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            action()

    return maybe


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm_from_env(value: str | None) -> None:
    """Arm the points CACHEOPS_FAULT names. A malformed value is ignored loudly: a test that sets it
    wrong must not pass because nothing was killed."""
    if not value:
        return
    for item in value.split(","):
        point, _, count = item.strip().partition(":")
        if point not in POINTS or not count.isdigit() or int(count) < 1:
            raise SystemExit(f"{ENV}={value!r}: expected <point>:<n> with a point among {', '.join(POINTS)}")
        ARMED[point] = on_nth(int(count), kill_self)


arm_from_env(os.environ.get(ENV))

"""Fault points for tests: a named point kills the process there when CACHEOPS_FAULT names it.

Resumable operations (migrate-embeddings --in-place) mark their phases with point("migrate:<phase>");
a test sets CACHEOPS_FAULT to one of them, watches the process die mid-way (exit 137, as if killed),
and checks that a re-run finishes the work. Unset, a point costs one environment lookup.
"""

from __future__ import annotations

import os

KILLED = 137  # what a shell reports for a process killed by SIGKILL


def point(name: str) -> None:
    if os.environ.get("CACHEOPS_FAULT") == name:
        os._exit(KILLED)

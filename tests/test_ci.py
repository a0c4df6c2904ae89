""".ci/run is the README's test command (scripts/test): set up .venv, then scripts/check runs ruff
(lint, then format), mypy and pytest, and fails when any of them fails. The checks run here with
stand-in tools that record each call and fail when told to (the real tools run in CI itself)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CALLS = ["ruff check .", "ruff format --check .", "mypy cacheops", "python -m pytest -q"]


def test_ci_runs_the_readme_test_command_which_ends_with_the_checks():
    ci = (ROOT / ".ci/run").read_text()
    assert "set -euo pipefail" in ci and ci.rstrip().splitlines()[-1] == "exec bash scripts/test -q"
    setup = (ROOT / "scripts/test").read_text()
    assert "set -euo pipefail" in setup  # a failed setup step stops it too
    assert setup.rstrip().splitlines()[-1] == 'exec bash scripts/check "$@"'


@pytest.mark.parametrize("failing", [None, *CALLS])
def test_the_checks_stop_at_the_first_failure_with_its_status(tmp_path, failing):
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "calls"
    for tool in ("ruff", "mypy", "python"):
        stub = bin_dir / tool
        stub.write_text(
            f'#!/bin/sh\necho "{tool} $*" >> "{log}"\nif [ "{tool} $*" = "$FAIL_CALL" ]; then exit 3; fi\nexit 0\n'
        )
        stub.chmod(0o755)
    env = {**os.environ, "CACHEOPS_VENV": str(tmp_path / "venv"), "FAIL_CALL": failing or ""}
    done = subprocess.run(["bash", str(ROOT / "scripts/check"), "-q"], env=env, capture_output=True, timeout=60)
    calls = log.read_text().splitlines()
    if failing is None:
        assert done.returncode == 0 and calls == CALLS
    else:
        assert done.returncode == 3, done.stderr
        assert calls == CALLS[: CALLS.index(failing) + 1]  # nothing after the failing step ran

"""Start-up stays cheap: the command table matches the command modules, and `cacheops --help`
imports no command module and none of the heavy packages (timings: bench/startup.py)."""

import os
import subprocess
import sys
from pathlib import Path

from cacheops.cli import COMMANDS, cli, load_command

ROOT = Path(__file__).resolve().parent.parent


def test_the_command_table_names_every_command_module():
    # a command module defines `command`; helpers (app, selectors, migrate_inplace) define none
    modules = {
        p.stem
        for p in (ROOT / "cacheops" / "cli").glob("*.py")
        if "\ncommand = " in p.read_text() or "\ndef command(" in p.read_text()
    }
    assert {entry.module for entry in COMMANDS.values()} == modules
    for name in COMMANDS:
        command = load_command(name)
        assert command.name == name
        assert cli.get_command(None, name) is command


def _imported_after(*args: str) -> set[str]:
    code = (
        "import sys; from cacheops.cli import cli\n"
        "try:\n    cli(list(sys.argv[1:]), prog_name='cacheops')\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return set(proc.stderr.split())


def test_help_imports_no_command_and_no_heavy_package():
    loaded = _imported_after("--help")
    assert not {m for m in loaded if m.startswith("cacheops.cli.") or m.startswith("cacheops.inspect")}
    for heavy in ("redis", "rich", "redisvl", "pydantic", "textual", "numpy", "yaml"):
        assert heavy not in loaded, heavy


def test_caches_imports_no_model_validation_or_ml_package():
    loaded = _imported_after("--url", "redis://127.0.0.1:1", "caches")
    assert "cacheops.cli.caches" in loaded and "cacheops.cli.scan" not in loaded
    for heavy in ("redisvl", "pydantic", "textual", "numpy", "yaml"):
        assert heavy not in loaded, heavy

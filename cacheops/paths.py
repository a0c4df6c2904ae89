"""Where cacheops keeps its own files (XDG base directories, overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    base = os.environ.get("CACHEOPS_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "cacheops"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_file() -> Path:
    explicit = os.environ.get("CACHEOPS_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "cacheops" / "config.yaml"

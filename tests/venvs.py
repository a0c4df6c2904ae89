"""Separate virtualenvs for cache libraries whose dependencies conflict with ours.

Legacy langchain_community RedisSemanticCache and old langchain-redis need redis-py < 6, GPTCache
needs redis-om 0.2 + pydantic 1, LiteLLM's proxy extra pulls a large tree of its own. Each is
installed once from PyPI into a cached directory keyed by its pinned requirements (and the Python
version), and its writer script (tests/venv_writers/write_<name>.py) runs there as a subprocess against the test
server. The cache survives across runs and worktrees; a clean machine builds them on first use
(about 1-4 minutes each, built in parallel). CACHEOPS_TEST_VENVS moves the cache directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# The versions docs/layouts.md observed working; pinned so the layouts under test never drift.
SPECS: dict[str, list[str]] = {
    # langchain-core < 1.2.7 (keys keep message ids), community RedisSemanticCache (redis-py < 6),
    # langchain-redis 0.2.3 (prefix ignored by the semantic cache; exact value = one object root).
    "legacy_langchain": [
        "langchain-core==0.3.86",
        "langchain-community==0.3.31",
        "langchain-redis==0.2.3",
        "redisvl==0.6.0",
        "redis==5.3.1",
    ],
    # langchain-redis 0.1.2 on redisvl 0.3.9: index = name, keys = "<prefix>:<sha>".
    "langchain_redis_01": ["langchain-redis==0.1.2", "redisvl==0.3.9", "langchain-core==0.3.86", "redis==5.3.1"],
    "gptcache": ["gptcache==0.1.44", "redis-om==0.2.2", "pydantic==1.10.27", "redis==5.3.1"],
    # [proxy]: 1.106.2's cache-hit path imports litellm.proxy (fastapi, soundfile, ...).
    "litellm": ["litellm[proxy]==1.106.2", "redisvl==0.28.0"],
}
WRITERS = Path(__file__).with_name("venv_writers")
BUILD_TIMEOUT = 1800


def cache_root() -> Path:
    root = os.environ.get("CACHEOPS_TEST_VENVS") or Path.home() / ".cache" / "cacheops" / "test-venvs"
    return Path(root)


def venv_dir(name: str) -> Path:
    key = json.dumps([list(sys.version_info[:2]), SPECS[name]])
    return cache_root() / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def ensure(name: str) -> Path:
    """The venv's python, building the venv first if it is not complete. Safe across processes."""
    target = venv_dir(name)
    python = target / "bin" / "python"
    done = target / ".complete"
    if done.exists():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return python
        shutil.rmtree(target, ignore_errors=True)
        log = target.parent / f"{target.name}.log"
        with open(log, "w") as out:
            subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, stdout=out, stderr=out)
            result = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", *SPECS[name]],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT,
            )
        if result.returncode != 0:
            tail = "\n".join(line for line in log.read_text().splitlines() if "is ignored" not in line)[-2000:]
            raise RuntimeError(f"building the {name} writer venv failed (log {log}):\n{tail}")
        done.write_text("\n".join(SPECS[name]) + "\n")
    return python


def ensure_all() -> dict[str, Path]:
    """Every writer venv, the missing ones built in parallel (pip is mostly waiting on downloads)."""
    with ThreadPoolExecutor(max_workers=len(SPECS)) as pool:
        return dict(zip(SPECS, pool.map(ensure, SPECS)))


class VenvWriter:
    """Runs tests/venv_writers/write_<name>.py in its venv: `python <script> <redis_url> <json op>`."""

    def __init__(self, name: str, python: Path):
        self.name, self.python = name, python

    def __call__(self, url: str, op: str, **args):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["TOKENIZERS_PARALLELISM"] = "false"
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no network: use the bundled price map
        proc = subprocess.run(
            [str(self.python), str(WRITERS / f"write_{self.name}.py"), url, json.dumps({"op": op, **args})],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            cwd=str(WRITERS),
        )
        if proc.returncode != 0:
            raise AssertionError(f"{self.name} writer {op} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        return json.loads(lines[-1][7:]) if lines else None


try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def venv_writers() -> dict[str, VenvWriter]:
        """Every writer venv (built on first use, in parallel), as callables: venv_writers["gptcache"](url, op, ...)."""
        return {name: VenvWriter(name, python) for name, python in ensure_all().items()}

"""Behaviour unchanged: the --json outputs of two cacheops checkouts on one demo keyspace, compared.

One embedded Redis, filled by the demo app (cacheops.demo.fill_demo_cache: the real LangChain and
RedisVL writers); then `caches`, `scan`, `stats`, `show KEY`, `doctor` and `history` run with the old
code, the new code and the old code again, each in its own process against the same server. A field
whose value differs between the two old runs depends on the clock (a TTL counting down, an idle time,
a duration) and is masked; every other field must be equal between old and new.

history is compared after the old code evicted one entry (so the old stream key holds an event the
new code must still show); the other commands run before that, on the pure demo keyspace.

    python bench/compare_outputs.py --old /work/baseline --old-python /work/baseline/.venv/bin/python

--new compares another checkout instead of this one (two commits exported with `git archive`, both
run with this checkout's venv: PYTHONPATH puts each checkout first). The demo keyspace is filled by
this checkout's demo app either way: old and new read the same keys.

Exit status 0 when everything not masked is identical; the report (JSON) says what was masked.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

NEW = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(NEW))

from cacheops.demo import fill_demo_cache  # noqa: E402
from cacheops.server.embedded import EmbeddedRedis  # noqa: E402


def run(python: str, checkout: Path, url: str, home: Path, *args: str) -> list:
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "COLUMNS": "200",
    }
    env.pop("REDIS_URL", None)
    proc = subprocess.run(
        [python, "-m", "cacheops", "--url", url, *args, "--json"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode not in (0, 8):  # 8: doctor found problems (the demo has some on purpose)
        raise SystemExit(f"{checkout}: cacheops {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    text = proc.stdout.strip()
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def flatten(value, path: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{path}.{k}" if path else str(k)))
        return out or {path: {}}
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{path}[{i}]"))
        return out or {path: []}
    return {path: value}


def generic(path: str) -> str:
    """The field's name without list positions: 'caches[3].ttl_policy' -> 'caches[].ttl_policy'."""
    out, depth = [], 0
    for ch in path:
        if ch == "[":
            depth += 1
            out.append("[]")
        elif ch == "]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def compare(name: str, old1: list, new: list, old2: list) -> dict:
    a, b, c = flatten(old1), flatten(new), flatten(old2)
    clock = {p for p in a.keys() | c.keys() if a.get(p, "<absent>") != c.get(p, "<absent>")}
    differ = sorted(p for p in a.keys() | b.keys() if p not in clock and a.get(p, "<absent>") != b.get(p, "<absent>"))
    return {
        "command": name,
        "fields": len(a),
        "masked_as_clock_dependent": sorted({generic(p) for p in clock}),
        "identical_byte_for_byte": json.dumps(old1, sort_keys=False) == json.dumps(new, sort_keys=False),
        "different": [{"field": p, "old": a.get(p, "<absent>"), "new": b.get(p, "<absent>")} for p in differ[:20]],
        "different_count": len(differ),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, default=Path("/work/baseline"), help="the old checkout")
    ap.add_argument("--old-python", default="/work/baseline/.venv/bin/python", help="the old checkout's python")
    ap.add_argument("--new", type=Path, default=NEW, help="the new checkout (default: this one)")
    ap.add_argument("--new-python", default=sys.executable)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cacheops-compare-"))
    server = EmbeddedRedis().start()
    report = []
    try:
        url = server.url
        fill_demo_cache(url)
        old = lambda *a: run(args.old_python, args.old, url, home / "old", *a)  # noqa: E731
        new = lambda *a: run(args.new_python, args.new, url, home / "new", *a)  # noqa: E731
        rows = old("scan")
        keys = []
        for layout in ("langchain_exact", "langchain_semantic", "redisvl_semantic", "redisvl_embeddings"):
            keys += [r["key"] for r in rows if r["layout"] == layout][:1]
        commands = [["caches"], ["scan"], ["scan", "--unknown"], ["stats"], ["doctor"]]
        commands += [["show", key] for key in keys]
        commands.append(["show", "--prompt", "What is the capital of France?"])
        for cmd in commands:
            report.append(compare(" ".join(cmd), old(*cmd), new(*cmd), old(*cmd)))
        # an event in the old stream key, written by the old code: the new history must still show it
        subprocess_env_evict = run(args.old_python, args.old, url, home / "old", "evict", "--key", keys[0], "--yes")
        assert subprocess_env_evict, "the old evict reported nothing"
        report.append(compare("history", old("history"), new("history"), old("history")))
    finally:
        server.stop()
    ok = all(r["different_count"] == 0 for r in report)
    print(json.dumps({"identical_except_masked": ok, "commands": report}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

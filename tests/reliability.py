"""Helpers the reliability tests share (faults, load, fuzz, secrets): keyspace snapshots, backup
reading, bulk entries written by the real libraries, cacheops run as a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from cacheops.ops.backup import key_from
from cacheops.ownkeys import OPLOG_STREAM

ROOT = Path(__file__).resolve().parent.parent


def snapshot(client: redis.Redis, match: str | None = None) -> dict[bytes, bytes]:
    """Every key (under match) -> a comparable copy of its value: the document for RedisJSON
    (JSON.SET of the same document need not DUMP to the same bytes), the DUMP for the rest.
    The operations log is left out: every run that writes appends to it."""
    out = {}
    for key in client.scan_iter(match=match, count=1000):
        if key == OPLOG_STREAM.encode():
            continue
        if client.type(key) == b"ReJSON-RL":
            out[key] = b"json:" + client.execute_command("JSON.GET", key)
        else:
            value = client.dump(key)
            if value is not None:
                out[key] = value
    return out


def backed_up_keys(path: Path | str) -> set[bytes]:
    """Keys saved in a backup file (entries and their companions), truncated last line tolerated."""
    keys: set[bytes] = set()
    for line in Path(path).read_bytes().splitlines()[1:]:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if "key" in doc or "key_b64" in doc:
            keys.add(key_from(doc))
            keys.update(key_from(c) for c in doc.get("companions", []))
    return keys


def cacheops_process(
    url: str, *args: str, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """`python -m cacheops --url URL ARGS...` in its own process, with this checkout first on the path."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cacheops", "--url", url, *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def exact_entries(url: str, count: int, prefix: str = "redis", start: int = 0, model: str = "gpt-4o-mini") -> None:
    """count langchain-redis RedisCache entries (RedisJSON documents), written by RedisCache.update
    with the chat model's own llm_string: the library's write path without a model call per entry."""
    from langchain_core.load import dumps
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration
    from langchain_redis import RedisCache

    from cacheops.demo import demo_chat_model

    llm_string = demo_chat_model(model)._get_llm_string()
    cache = RedisCache(redis_url=url, prefix=prefix)
    for i in range(start, start + count):
        prompt = dumps([HumanMessage(content=f"question {i}")])
        cache.update(prompt, llm_string, [ChatGeneration(message=AIMessage(content=f"answer {i}"))])

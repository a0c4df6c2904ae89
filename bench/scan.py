"""Benchmark: `cacheops scan --json > /dev/null` against `redis-cli --scan --count 1000 > /dev/null`.

Fills an embedded Redis (search + JSON modules) with N entries of the real langchain-redis layouts,
then times both listings on the same server in one run and reports wall times, their ratio and the
peak RSS of the cacheops process. Target (issue 2, item 7): cacheops within 3x redis-cli at 1M
entries; peak RSS at 1M within 1.2x of that at 100k.

How the keyspace is written (faithful, and fast enough for 1M entries):
- A spy BaseCache captures what LangChain hands a cache when a chat model is invoked: the real
  (prompt, llm_string, [ChatGeneration]) of a fake chat model whose messages carry OpenAI-style
  response_metadata / usage_metadata, for several models. These generations form a pool.
- Every entry gets its own prompt, serialised by langchain_core.load.dumps([HumanMessage(...)]) as
  LangChain does, and the key/value of the library itself:
  exact:    RedisCache._key(prompt, llm_string) -> JSON.SET [json.loads(dumps(gen))] (+ EXPIRE),
            as langchain_redis.RedisCache.update does (>= 0.2.6, array root);
  semantic: the RedisSemanticCache's own RedisVL SemanticCache builds each entry
            (CacheEntry(...).to_dict, response = json.dumps([dumps(gen)]), metadata llm_string) and
            its SearchIndex.load writes them in pipelined batches with a TTL, as store() does one by one.
- A handful of entries are first written by the real RedisCache / RedisSemanticCache.update, and
  the bulk writer is checked to produce byte-identical values for the same inputs.

Usage:  python bench/scan.py --entries 100000 [--runs 3] [--plain]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "llama-3.1-8b-instruct")
TTLS = (None, None, None, 3600, 3600, 86400, 86400, 7 * 86400)  # seconds; a mix, 3/8 never expire
DIMS = 384  # all-MiniLM-L6-v2
TOPICS = (
    "billing",
    "password reset",
    "refunds",
    "API limits",
    "SSO",
    "exports",
    "the mobile app",
    "two-factor auth",
    "invoices",
    "team seats",
    "data retention",
    "webhooks",
)
ANSWER_BODY = (
    "Open Settings, then choose the section for {t}. The change applies at once to every member "
    "of the workspace; admins get an email summary. "
)


def ensure_redis_cli() -> str:
    path = shutil.which("redis-cli")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("redis-cli missing: apt-get install -y redis-tools", file=sys.stderr)
        if subprocess.call(["apt-get", "install", "-y", "redis-tools"], stdout=subprocess.DEVNULL) != 0:
            subprocess.check_call(["apt-get", "update"], stdout=subprocess.DEVNULL)
            subprocess.check_call(["apt-get", "install", "-y", "redis-tools"], stdout=subprocess.DEVNULL)
        path = shutil.which("redis-cli")
    if not path:
        sys.exit("redis-cli not found: install redis-tools (Debian/Ubuntu) or redis")
    return path


# -- the chat model and the spy that captures what LangChain hands a cache ---------------------------


def capture_pool(per_model: int):
    """[(llm_string, model, [ChatGeneration])...] captured from real invoke() calls."""
    from langchain_core.caches import BaseCache
    from langchain_core.globals import set_llm_cache
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    class Spy(BaseCache):
        def __init__(self):
            self.updates = []

        def lookup(self, prompt, llm_string):
            return None

        def update(self, prompt, llm_string, return_val):
            self.updates.append((prompt, llm_string, return_val))

        def clear(self, **kwargs):
            pass

    class ProviderLikeChatModel(GenericFakeChatModel):
        """A fake chat model identified like a provider model (model_name, temperature)."""

        model_name: str
        temperature: float = 0.0

        @property
        def _identifying_params(self):
            return {"model_name": self.model_name, "temperature": self.temperature}

    rng = random.Random(7)
    spy = Spy()
    set_llm_cache(spy)
    try:
        for model_name in MODELS:
            replies = []
            for i in range(per_model):
                topic = TOPICS[i % len(TOPICS)]
                text = ANSWER_BODY.format(t=topic) * rng.randint(1, 6)
                prompt_tokens, completion_tokens = rng.randint(8, 60), len(text) // 4
                replies.append(
                    AIMessage(
                        content=text.strip(),
                        response_metadata={
                            "token_usage": {
                                "completion_tokens": completion_tokens,
                                "prompt_tokens": prompt_tokens,
                                "total_tokens": completion_tokens + prompt_tokens,
                            },
                            "model_name": model_name,
                            "system_fingerprint": "fp_0ba0d124f1",
                            "finish_reason": "stop",
                            "logprobs": None,
                        },
                        usage_metadata={
                            "input_tokens": prompt_tokens,
                            "output_tokens": completion_tokens,
                            "total_tokens": completion_tokens + prompt_tokens,
                        },
                    )
                )
            chat = ProviderLikeChatModel(model_name=model_name, messages=iter(replies))
            for i in range(per_model):
                chat.invoke(f"pool question {i} for {model_name}")
    finally:
        set_llm_cache(None)
    pool = []
    for _prompt, llm_string, gens in spy.updates:
        model = next(m for m in MODELS if f"'{m}'" in llm_string)
        pool.append((llm_string, model, gens))
    return pool


class Embeddings384:
    """Deterministic 384-dim unit vectors (no model download); only the bytes' shape matters here."""

    def __init__(self):
        import numpy as np

        rng = np.random.default_rng(3)
        vecs = rng.standard_normal((257, DIMS)).astype("float32")
        self.pool = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.pool[hash(text) % len(self.pool)]

    def embed_documents(self, texts):
        return [self.embed_query(t) for t in texts]


def as_langchain_embeddings(raw: Embeddings384):
    from langchain_core.embeddings import Embeddings

    class E(Embeddings):
        def embed_query(self, text):
            return raw.embed_query(text)

        def embed_documents(self, texts):
            return raw.embed_documents(texts)

    return E()


def question(i: int) -> str:
    return f"Customer {i}: how do I change {TOPICS[i % len(TOPICS)]} for workspace ws-{i * 7919 % 100003}?"


# -- fill ------------------------------------------------------------------------------------------


def fill(url: str, n: int, semantic_share: float, batch: int = 2000) -> dict:
    import redis
    from langchain_core.load import dumps
    from langchain_core.messages import HumanMessage
    from langchain_redis import RedisCache, RedisSemanticCache
    from redisvl.extensions.cache.llm.schema import CacheEntry

    started = time.monotonic()
    pool = capture_pool(per_model=64)
    exact_values = [json.dumps([json.loads(dumps(g)) for g in gens]) for _, _, gens in pool]
    semantic_responses = [json.dumps([dumps(g) for g in gens]) for _, _, gens in pool]
    emb = Embeddings384()
    client = redis.Redis.from_url(url)
    exact = RedisCache(redis_url=url)  # prefix "redis"
    semantic = RedisSemanticCache(embeddings=as_langchain_embeddings(emb), redis_url=url)  # "llmcache", 384 dims
    rvl = semantic.cache

    # Real library writes first, then the bulk writer must reproduce them byte for byte.
    checks = []
    for i in range(4):
        llm_string, _model, gens = pool[i * 3]
        prompt = dumps([HumanMessage(content=f"reference question {i}")])
        exact.update(prompt, llm_string, gens)
        semantic.update(prompt, llm_string, gens)
        checks.append((prompt, i * 3))
    for prompt, p in checks:
        llm_string = pool[p][0]
        key = exact._key(prompt, llm_string)
        assert json.loads(client.execute_command("JSON.GET", key)) == json.loads(exact_values[p]), key
        entry = CacheEntry(
            prompt=prompt,
            response=semantic_responses[p],
            prompt_vector=emb.embed_query(prompt),
            metadata={"llm_string": llm_string},
        ).to_dict(rvl._vectorizer.dtype)
        stored = client.hgetall(f"{rvl.index.prefix}:{entry['entry_id']}")
        for name in ("prompt", "response", "metadata", "prompt_vector", "entry_id"):
            want = entry[name] if isinstance(entry[name], bytes) else str(entry[name]).encode()
            assert stored[name.encode()] == want, name

    n_semantic = int(n * semantic_share)
    n_exact = n - n_semantic
    # exact: JSON.SET + EXPIRE, pipelined
    pipe = client.pipeline(transaction=False)
    for i in range(n_exact):
        p = i % len(pool)
        prompt = dumps([HumanMessage(content=question(i))])
        key = exact._key(prompt, pool[p][0])
        pipe.execute_command("JSON.SET", key, "$", exact_values[p])
        ttl = TTLS[i % len(TTLS)]
        if ttl:
            pipe.expire(key, ttl + i % 600)
        if len(pipe) >= batch:
            pipe.execute()
    pipe.execute()
    # semantic: the library's own entry builder and SearchIndex.load, one TTL per load batch
    entries = []
    for i in range(n_semantic):
        p = (i * 5) % len(pool)
        prompt = dumps([HumanMessage(content=question(n_exact + i))])
        entries.append(
            CacheEntry(
                prompt=prompt,
                response=semantic_responses[p],
                prompt_vector=emb.pool[i % len(emb.pool)],
                metadata={"llm_string": pool[p][0]},
            ).to_dict(rvl._vectorizer.dtype)
        )
        if len(entries) >= batch or i == n_semantic - 1:
            rvl._index.load(data=entries, ttl=TTLS[(i // batch) % len(TTLS)], id_field="entry_id", batch_size=batch)
            entries = []
    while True:  # the index catches up in the background; scan does not need it, FT.INFO does
        info = client.execute_command("FT.INFO", rvl.index.name)
        info = dict(zip(info[::2], info[1::2])) if isinstance(info, list) else info
        if float(info.get(b"percent_indexed", info.get("percent_indexed", 1))) >= 1:
            break
        time.sleep(0.5)
    return {
        "exact": n_exact + len(checks),
        "semantic": n_semantic + len(checks),
        "dbsize": client.dbsize(),
        "fill_seconds": round(time.monotonic() - started, 1),
        "used_memory_human": client.info("memory")["used_memory_human"],
    }


# -- timing ----------------------------------------------------------------------------------------


def server_cpu(client) -> float:
    info = client.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def timed(argv: list[str], env: dict | None = None) -> tuple[float, int, float]:
    """(wall seconds, peak RSS in KiB) of a child process writing to /dev/null, measured by a small
    launcher (bench/_measure.py) so the figure is the child's own."""
    launcher = [sys.executable, "-S", str(Path(__file__).with_name("_measure.py"))]
    out = subprocess.run(launcher + argv, stdout=subprocess.PIPE, env=env, text=True, check=True).stdout.split()
    wall, rss, code, cpu = float(out[0]), int(out[1]), int(out[2]), float(out[3])
    if code != 0:
        sys.exit(f"{' '.join(argv)} exited with {code}")
    return wall, rss, cpu


@contextlib.contextmanager
def server_url(url: str | None):
    """`url`, or (None) the URL of an embedded server started here and stopped afterwards."""
    if url:
        yield url
        return
    from cacheops.server.embedded import EmbeddedRedis

    server = EmbeddedRedis().start()
    try:
        yield server.url
    finally:
        server.stop()


def median_row(runs: list[tuple]) -> dict:
    """A report row from timed runs of (wall s, peak RSS KiB, client CPU s[, server CPU s]): the run
    with the median wall time, every wall time, the highest peak RSS."""
    mid = sorted(runs)[len(runs) // 2]
    row = {
        "wall_median_s": round(mid[0], 3),
        "wall_all_s": [round(r[0], 3) for r in runs],
        "client_cpu_s": round(mid[2], 2),
    }
    if len(mid) > 3:
        row["server_cpu_s"] = round(mid[3], 2)
    row["peak_rss_mib"] = round(max(r[1] for r in runs) / 1024, 1)
    return row


def cli_supports_count(cli: str) -> bool:
    return (
        "--count"
        in subprocess.run([cli, "--help"], capture_output=True, text=True).stderr
        + subprocess.run([cli, "--help"], capture_output=True, text=True).stdout
    )


def count_lines(argv: list[str], env: dict | None = None) -> dict:
    out = subprocess.run(argv, stdout=subprocess.PIPE, env=env, check=True).stdout
    layouts: dict[str, int] = {}
    for line in out.splitlines():
        layout = json.loads(line)["layout"]
        layouts[layout] = layouts.get(layout, 0) + 1
    return layouts


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    import redis

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg_1m_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
        "redis-py": redis.__version__,
        "kernel": platform.release(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--semantic-share", type=float, default=0.5, help="fraction of semantic entries")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each tool (median reported)")
    parser.add_argument("--plain", action="store_true", help="also time `cacheops scan --plain` (no script)")
    parser.add_argument("--url", help="use this (empty or already filled) server instead of an embedded one")
    parser.add_argument("--no-fill", action="store_true", help="with --url: time only, do not write")
    parser.add_argument("--json", dest="json_out", help="also write the results to this JSON file")
    parser.add_argument(
        "--commands",
        default="scan",
        help="cacheops commands timed against redis-cli, comma-separated: scan, caches, caches-full, stats, "
        "stats-full (caches/stats read no values but a sample per cache; -full reads every value)",
    )
    parser.add_argument("--no-names", action="store_true", help="skip the python SCAN names reference")
    args = parser.parse_args()
    cli = ensure_redis_cli()

    with server_url(args.url) as url:
        import redis

        client = redis.Redis.from_url(url)
        facts = {"server": client.info("server")["redis_version"], **machine()}
        fill_info = {} if args.no_fill else fill(url, args.entries, args.semantic_share)
        fill_info.setdefault("dbsize", client.dbsize())
        print(f"keyspace: {fill_info}", file=sys.stderr)
        host, port = client.connection_pool.connection_kwargs["host"], client.connection_pool.connection_kwargs["port"]
        cli_argv = [cli, "-h", str(host), "-p", str(port), "--scan"]
        if cli_supports_count(cli):
            cli_argv += ["--count", "1000"]
        else:  # redis-cli < 7.2 (Debian 12 ships 7.0.15) has no --count: it SCANs with the default COUNT 10
            print("note: this redis-cli has no --count; it scans with COUNT 10", file=sys.stderr)
        facts["redis-cli"] = subprocess.run([cli, "--version"], capture_output=True, text=True).stdout.strip()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        ops_argv = [sys.executable, "-m", "cacheops", "--url", url, "scan", "--json"]
        names_argv = [sys.executable, str(Path(__file__).with_name("scan_names.py")), url]
        base_argv = [sys.executable, "-m", "cacheops", "--url", url]
        variants = {"redis-cli": cli_argv}
        if not args.no_names:
            variants["python SCAN 1000 names"] = names_argv
        for command in args.commands.split(","):
            if command == "scan":
                variants["cacheops"] = ops_argv  # the name earlier runs recorded
            else:
                verb, _, full = command.partition("-")
                variants[f"cacheops {verb}{' --full' if full else ''}"] = (
                    base_argv + [verb, "--json"] + (["--full"] if full else [])
                )
        if args.plain:
            variants["cacheops --plain"] = ops_argv + ["--plain"]
        results: dict[str, list] = {name: [] for name in variants}
        for _ in range(args.runs):  # interleaved, so drift hits every tool alike
            for name, argv in variants.items():
                before = server_cpu(client)
                wall, rss, cpu = timed(argv, env)
                results[name].append((wall, rss, cpu, server_cpu(client) - before))
        listed = count_lines(ops_argv, env) if "cacheops" in variants else {}
        report = {
            "commands": {name: " ".join(argv) for name, argv in variants.items()},
            "entries": args.entries,
            "keyspace": fill_info,
            "listed": listed,
            "machine": facts,
            "runs": {},
        }
        for name, runs in results.items():
            report["runs"][name] = median_row(runs)
        base = report["runs"]["redis-cli"]["wall_median_s"]
        for row in report["runs"].values():
            row["ratio_to_redis_cli"] = round(row["wall_median_s"] / base, 2)
        print(json.dumps(report, indent=2))
        print("\n| tool | wall s | client CPU s | server CPU s | peak RSS MiB | ratio to redis-cli |")
        print("|---|---|---|---|---|---|")
        for name, row in report["runs"].items():
            print(
                f"| {name} | {row['wall_median_s']} | {row['client_cpu_s']} | {row['server_cpu_s']} | "
                f"{row['peak_rss_mib']} | {row['ratio_to_redis_cli']} |"
            )
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

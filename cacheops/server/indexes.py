"""The search indexes on the server (FT._LIST / FT.INFO), parsed into plain typed records.

redis-py returns FT.INFO as a dict in 8.x and as a flat [k, v, k, v] list in 5.x, and attributes
as dicts or flat lists depending on the RediSearch version: both are normalised here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from .scripting import is_unknown_command
from .topology import primary_nodes

DTYPE_BYTES = {"FLOAT32": 4, "FLOAT64": 8, "FLOAT16": 2, "BFLOAT16": 2, "INT8": 1, "UINT8": 1}


@dataclass
class VectorField:
    name: str
    dims: int
    dtype: str  # FLOAT32, FLOAT16, ...
    metric: str  # COSINE, L2, IP
    algorithm: str

    @property
    def nbytes(self) -> int:
        return self.dims * DTYPE_BYTES.get(self.dtype, 4)


@dataclass
class IndexInfo:
    name: str
    key_type: str  # HASH or JSON
    prefixes: list[str]
    fields: dict[str, str] = field(default_factory=dict)  # attribute -> TEXT/TAG/NUMERIC/VECTOR
    vectors: list[VectorField] = field(default_factory=list)
    num_docs: int = 0
    indexing_failures: int = 0
    last_indexing_error: str = ""
    percent_indexed: float = 1.0
    nodes: list[str] = field(default_factory=list)  # cluster: the primaries that list it (FT._LIST)

    @property
    def vector(self) -> VectorField | None:
        return self.vectors[0] if self.vectors else None

    def covers(self, key: str) -> bool:
        """Whether RediSearch indexes this key (plain string prefix match, so it bleeds)."""
        return any(key.startswith(p) for p in self.prefixes)


def _s(value) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)


def _as_dict(value) -> dict:
    if isinstance(value, dict):
        return {_s(k): v for k, v in value.items()}
    if isinstance(value, list):
        return {_s(k): v for k, v in zip(value[::2], value[1::2])}
    return {}


def parse_ft_info(raw) -> IndexInfo:
    info = _as_dict(raw)
    definition = _as_dict(info.get("index_definition", {}))
    idx = IndexInfo(
        name=_s(info.get("index_name", "")),
        key_type=_s(definition.get("key_type", "HASH")).upper(),
        prefixes=[_s(p) for p in definition.get("prefixes", [])],
        num_docs=int(float(_s(info.get("num_docs", 0)))),
        percent_indexed=float(_s(info.get("percent_indexed", 1))),
    )
    failures = int(float(_s(info.get("hash_indexing_failures", 0))))
    errors = _as_dict(info.get("Index Errors", {}))
    idx.indexing_failures = max(failures, int(float(_s(errors.get("indexing failures", 0)))))
    last = _s(errors.get("last indexing error", ""))
    idx.last_indexing_error = "" if last == "N/A" else last
    for attr in info.get("attributes", []):
        if isinstance(attr, list):
            # older servers: [identifier, x, attribute, y, type, TEXT, ...] possibly with bare flags
            attr = _as_dict(attr[: len(attr) - len(attr) % 2])
        else:
            attr = _as_dict(attr)
        name = _s(attr.get("attribute", attr.get("identifier", "")))
        kind = _s(attr.get("type", "")).upper()
        idx.fields[name] = kind
        if kind == "VECTOR":
            idx.vectors.append(
                VectorField(
                    name=name,
                    dims=int(_s(attr.get("dim", 0))),
                    dtype=_s(attr.get("data_type", "FLOAT32")).upper(),
                    metric=_s(attr.get("distance_metric", "COSINE")).upper(),
                    algorithm=_s(attr.get("algorithm", "FLAT")).upper(),
                )
            )
    return idx


def list_indexes(client: redis.Redis) -> list[IndexInfo]:
    """Every search index, or [] when the server has no search module. On a Redis Cluster, every
    primary's (without a search coordinator each shard has its own indexes, of its own documents):
    one record per name, its counts summed and `nodes` naming where it is listed."""
    nodes = primary_nodes(client)
    if len(nodes) == 1:
        return _list_on(nodes[0].client)
    merged: dict[str, IndexInfo] = {}
    for node in nodes:
        for idx in _list_on(node.client):
            seen = merged.get(idx.name)
            if seen is None:
                idx.nodes = [node.name]
                merged[idx.name] = idx
            else:
                seen.nodes.append(node.name)
                seen.num_docs += idx.num_docs
                seen.indexing_failures += idx.indexing_failures
                seen.last_indexing_error = seen.last_indexing_error or idx.last_indexing_error
    return sorted(merged.values(), key=lambda i: i.name)


def search_client(client: redis.Redis, idx: IndexInfo) -> redis.Redis:
    """Where to send FT.SEARCH / FT.INFO for this index: the client itself on one server; on a Redis
    Cluster a plain client of a primary that lists it (without a coordinator the one whose slot its
    name hashes to, the only node that has it; redis-py would send search commands to its default
    node, which answers MOVED or "no such index")."""
    nodes = primary_nodes(client)
    if len(nodes) == 1:
        return client
    return next((n.client for n in nodes if n.name in idx.nodes), nodes[0].client)


def _list_on(client: redis.Redis) -> list[IndexInfo]:
    try:
        names = client.execute_command("FT._LIST")
    except redis.ResponseError as exc:
        if is_unknown_command(exc):
            return []
        raise
    out = []
    for name in names:
        try:
            out.append(parse_ft_info(client.execute_command("FT.INFO", name)))
        except redis.ResponseError:
            continue  # dropped between _LIST and INFO
    return sorted(out, key=lambda i: i.name)


def parse_search(reply, nocontent: bool = False) -> list[tuple[bytes, dict]]:
    """FT.SEARCH results as [(key, {field: value})], from a RESP3 map or a RESP2 flat list."""
    if isinstance(reply, dict):
        out: list[tuple[bytes, dict]] = []
        for doc in reply.get(b"results", reply.get("results", [])) or []:
            key = doc.get(b"id", doc.get("id"))
            attrs = doc.get(b"extra_attributes", doc.get("extra_attributes")) or {}
            out.append((key, dict(attrs)))
        return out
    if not isinstance(reply, list) or not reply:
        return []
    if nocontent:
        return [(key, {}) for key in reply[1:]]
    out = []
    for key, fields in zip(reply[1::2], reply[2::2]):
        out.append((key, dict(zip(fields[::2], fields[1::2])) if isinstance(fields, list) else {}))
    return out


def sample_fields(client: redis.Redis, index: str, fields: tuple[str, ...], limit: int) -> list[dict]:
    """Up to `limit` documents of an index, each as {field bytes: value bytes} for `fields` only.
    [] when the index cannot be searched (dropped meanwhile, or no search module)."""
    try:
        reply = client.execute_command(
            "FT.SEARCH", index, "*", "RETURN", len(fields), *fields, "LIMIT", 0, limit, "DIALECT", 2
        )
    except redis.ResponseError:
        return []
    return [found for _key, found in parse_search(reply)]

"""Prometheus metrics: the tracker's counters per cache and model, and the caches' entries and bytes.

Read-only. Counters come from the tracker's totals hashes (cacheops:hitrate:t:<cache>, one HGETALL
per tracked cache per scrape); entries and bytes from a catalog pass (a SCAN of the keyspace), so a
long-running endpoint refreshes those at most every `catalog_interval` seconds. No label is ever an
entry key: the label sets are caches x models.
"""

from __future__ import annotations

import threading
import time

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry

from cacheops_track import keys as K

from ..layouts import Context
from ..pricing import PriceTable, load_prices
from .catalog import build_catalog
from .hits import tracked_caches


class CacheMetrics:
    """A prometheus_client collector over one Redis."""

    def __init__(
        self, client: redis.Redis, ctx: Context, catalog_interval: float = 300, table: PriceTable | None = None
    ):
        self.client = client
        self.ctx = ctx
        self.catalog_interval = catalog_interval
        self.table = table or load_prices()
        self._catalog = None
        self._catalog_at = 0.0
        self._lock = threading.Lock()

    def catalog(self):
        with self._lock:
            if self._catalog is None or time.monotonic() - self._catalog_at >= self.catalog_interval:
                self._catalog = build_catalog(self.client, self.ctx)
                self._catalog_at = time.monotonic()
            return self._catalog

    def collect(self):
        lookups = CounterMetricFamily(
            "cacheops_lookups", "Cache lookups the app's tracker recorded", labels=["cache", "model", "result"]
        )
        tokens = CounterMetricFamily(
            "cacheops_tokens_saved", "Tokens cache hits saved (tracked)", labels=["cache", "model", "direction"]
        )
        estimated = CounterMetricFamily(
            "cacheops_estimated_hits",
            "Hits whose saved tokens are estimated (the generation carried no usage)",
            labels=["cache", "model"],
        )
        money = CounterMetricFamily(
            "cacheops_money_saved",
            f"List price of the tokens hits saved ({self.table.currency}, prices of {self.table.taken})",
            labels=["cache", "model", "currency"],
        )
        latency = HistogramMetricFamily(
            "cacheops_lookup_latency_seconds", "Lookup latency seen by the app (tracked)", labels=["cache"]
        )
        for cache in sorted(tracked_caches(self.client)):
            raw = self.client.hgetall(K.bucket_key(K.TOTALS_PREFIX, cache)) or {}
            per_model: dict[str, dict[str, float]] = {}
            lat: dict[str, float] = {}
            for name, value in raw.items():
                name = name.decode("utf-8", "replace")
                try:
                    number = float(value)
                except ValueError:
                    continue
                if name.startswith(K.LATENCY_FIELD):
                    lat[name[len(K.LATENCY_FIELD) :]] = number
                    continue
                model, _, counter = name.rpartition("|")
                per_model.setdefault(model, {})[counter] = number
            for model, c in sorted(per_model.items()):
                lookups.add_metric([cache, model, "hit"], c.get(K.C_HITS, 0))
                lookups.add_metric([cache, model, "miss"], c.get(K.C_MISSES, 0))
                tokens.add_metric([cache, model, "input"], c.get(K.C_INPUT_SAVED, 0))
                tokens.add_metric([cache, model, "output"], c.get(K.C_OUTPUT_SAVED, 0))
                estimated.add_metric([cache, model], c.get(K.C_ESTIMATED, 0))
                saved = self.table.cost(model, c.get(K.C_INPUT_SAVED, 0), c.get(K.C_OUTPUT_SAVED, 0))
                if saved is not None:
                    money.add_metric([cache, model, self.table.currency], saved)
            if lat.get("count"):
                buckets = [(f"{b / 1e6:g}", lat.get(str(b), 0)) for b in K.LATENCY_BOUNDS_US]
                buckets.append(("+Inf", lat["count"]))
                latency.add_metric([cache], buckets, lat.get("sum_us", 0) / 1e6)
        yield from (lookups, tokens, estimated, money, latency)
        catalog = self.catalog()
        entries = GaugeMetricFamily("cacheops_entries", "Cache entries in Redis", labels=["cache", "kind"])
        nbytes = GaugeMetricFamily("cacheops_bytes", "Bytes of the cache entries (MEMORY USAGE)", labels=["cache"])
        for c in catalog.caches:
            entries.add_metric([c.name, c.kind], c.entries)
            nbytes.add_metric([c.name], c.bytes)
        yield from (entries, nbytes)


def metrics_registry(client: redis.Redis, ctx: Context, catalog_interval: float = 300) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CacheMetrics(client, ctx, catalog_interval))
    return registry

"""Producing in a thread, ahead of the consumer: Redis round trips overlap the Python work on the
previous batch (the scan engine's script calls, migrate-embeddings' reads ahead of the embedder)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


def read_ahead(items: Iterator[T], depth: int, name: str) -> Iterator[T]:
    """Yield what `items` yields, produced in a thread that runs at most `depth` items ahead (memory
    stays bounded). An exception in the producer is raised here, in the consumer. When the consumer
    stops early (break, error, close), the producer stops after the item it is producing."""
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, payload = out.get()
            if kind == "error":
                raise payload
            if kind == "done":
                return
            yield payload
    finally:
        stop.set()
        thread.join()

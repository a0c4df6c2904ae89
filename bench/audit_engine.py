"""Benchmark: the audit's neighbour search alone (semantic/allpairs.py), no Redis (not a test).

The vectors are the audit benchmark's prompts through the same 384-dim hashing embedding, put in a
StoredVectors spill file as the scan would; then every row's 10 nearest are searched and the search's
own CPU time, wall time, measured recall and peak RSS printed.

    python bench/audit_engine.py 100000 ivf
    python bench/audit_engine.py 20000 exact
"""

import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit import ASKS, TOPICS  # noqa: E402

from cacheops.demo import hashing_embeddings  # noqa: E402
from cacheops.semantic import allpairs  # noqa: E402


def main() -> None:
    size, method = int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "auto"
    embeddings = hashing_embeddings(384)
    store = allpairs.StoredVectors(384)
    for start in range(0, size, 1000):
        rows = range(start, min(size, start + 1000))
        prompts = [ASKS[i % len(ASKS)].format(t=TOPICS[(i // 5) % len(TOPICS)], n=i) for i in rows]
        vectors = np.array(embeddings.embed_documents(prompts), dtype=np.float32)
        store.add([f"k:{i}".encode() for i in rows], [0] * len(rows), list(rows), vectors)
    store.finish()
    cpu, wall = time.process_time(), time.monotonic()
    report = allpairs.SearchReport(method)
    for _ in allpairs.nearest_blocks(store, 10, method, report):
        pass
    print(
        f"{size} {method} {report.to_dict()} search CPU {time.process_time() - cpu:.1f}s "
        f"wall {time.monotonic() - wall:.1f}s "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()

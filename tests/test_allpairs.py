"""semantic/allpairs.py without a server: the block search against a plain numpy all-pairs, scopes,
duplicate rows, and the approximate index's measured recall."""

from __future__ import annotations

import numpy as np
import pytest

from cacheops.semantic import allpairs, ivf


def store_of(vectors: np.ndarray, scopes: list[int], keys: list[bytes] | None = None) -> allpairs.StoredVectors:
    store = allpairs.StoredVectors(vectors.shape[1])
    keys = keys or [f"k:{i}".encode() for i in range(len(vectors))]
    for start in range(0, len(vectors), 300):  # in several batches, as the scan delivers them
        end = start + 300
        store.add(keys[start:end], scopes[start:end], [0] * len(keys[start:end]), vectors[start:end])
    store.finish()
    return store


def brute_force(vectors: np.ndarray, scopes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    sim[scopes[:, None] != scopes[None, :]] = -np.inf
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return order, 1 - np.take_along_axis(sim, order, axis=1)


def gather(store, k, method, report=None):
    report = report or allpairs.SearchReport(method)
    idx = np.full((store.count, k), -2)
    dist = np.zeros((store.count, k), dtype=np.float32)
    for rows, i, d in allpairs.nearest_blocks(store, k, method, report):
        idx[rows], dist[rows] = i, d
    return idx, dist, report


@pytest.mark.parametrize("block", [7, 64, 2048])
def test_exact_blocks_match_brute_force_within_scopes(monkeypatch, block):
    monkeypatch.setattr(allpairs, "BLOCK", block)
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(700, 24)).astype(np.float32)
    scopes = rng.integers(0, 3, size=700)
    scopes[699] = 99  # alone in its scope: no neighbours
    store = store_of(vectors, scopes.tolist())
    idx, dist, report = gather(store, 5, "exact")
    want_idx, want_dist = brute_force(vectors, scopes, 5)
    assert (idx[:699] == want_idx[:699]).all()
    assert np.allclose(dist[:699], want_dist[:699], atol=1e-5)
    assert (idx[699] == -1).all() and report.method == "exact" and report.rows == 700
    assert store.key(0) == b"k:0" and store.key(699) == b"k:699"
    store.close()


def test_duplicate_keys_from_scan_count_once():
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(10, 8)).astype(np.float32)
    keys = [f"k:{i}".encode() for i in range(9)] + [b"k:3"]
    store = store_of(vectors, [0] * 10, keys)
    assert int(store.alive.sum()) == 9
    idx, _, _ = gather(store, 3, "exact")
    assert 9 not in idx[:9]
    store.close()


def test_approximate_index_reports_recall_against_exact():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(40, 32))
    vectors = (centres[rng.integers(0, 40, size=3000)] + 0.3 * rng.normal(size=(3000, 32))).astype(np.float32)
    store = store_of(vectors, [0] * 3000)
    idx, dist, report = gather(store, 10, "ivf")
    assert report.method == "ivf" and report.recall_at_k >= allpairs.MIN_RECALL
    assert report.recall_sample == allpairs.RECALL_SAMPLE
    want_idx, want_dist = brute_force(vectors, np.zeros(3000), 10)
    found = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx.tolist(), want_idx.tolist())])
    assert found >= 0.98  # the whole cache, not only the sample
    store.close()


def test_inverted_file_cuts_long_lists_of_tied_entries(monkeypatch):
    # Cached prompts that differ in one word sit at exactly the same distance from each other:
    # k-means cannot split them. The long list is cut into pieces along its main axis, so exact
    # duplicates stay in one piece and a query searches a few pieces, not its whole cluster.
    monkeypatch.setattr(allpairs, "RECALL_SAMPLE", 200)
    rng = np.random.default_rng(4)
    shared = rng.normal(size=(3, 64))
    word = rng.integers(0, 64, size=4000)
    vectors = shared[rng.integers(0, 3, size=4000)] * 0.5
    vectors[np.arange(4000), word] += 1.0  # the one differing word: equal words give equal vectors
    store = store_of(vectors.astype(np.float32), [0] * 4000)
    index = ivf.InvertedFile(store, np.arange(4000), keep=np.arange(0))
    sizes = np.diff(index.starts)
    assert sizes.max() <= np.ceil(ivf.CAP * 4000 / 63)
    index.close()
    idx, dist, report = gather(store, 10, "ivf")
    assert report.recall_at_k >= allpairs.MIN_RECALL
    _, want_dist = brute_force(vectors, np.zeros(4000), 10)
    close = np.mean(np.abs(dist - want_dist).max(axis=1) < 1e-5)  # the same distances: ties may differ
    assert close >= 0.98
    store.close()

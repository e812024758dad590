"""The vector index kinds against numpy's exact search: ivf and ivf-sq8 (with its exact re-rank from SQLite) find
the exact top-k on a small clustered set when they scan enough cells, survive save/load and the rebuild after a
deletion, and nprobe / ef_search change one search without changing the index."""

from __future__ import annotations

import numpy as np
import pytest

from vidla.search import SearchIndex, VectorIndexConfig
from vidla.search.indexer import refresh_vectors
from vidla.search.store import IndexStore, VideoRow
from vidla.search.vectors import build_vector_index, collect, index_kind, inner_index, load_vector_index, \
    save_vector_index, search_parameters, search_vectors

DIM, VIDEOS, WINDOWS = 32, 40, 50  # 2,000 windows: 40 "videos" of 50 windows near their video's centre


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((VIDEOS, DIM)))
    vectors = unit(0.8 * np.repeat(centres, WINDOWS, 0) + 0.6 * unit(rng.standard_normal((VIDEOS * WINDOWS, DIM))))
    queries = unit(0.5 * centres[rng.integers(0, VIDEOS, 20)] + 0.87 * unit(rng.standard_normal((20, DIM))))
    return vectors, queries


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("kind", ["ivf", "ivf-sq8", "hnsw"])
def test_the_index_survives_save_and_load(tmp_path, kind):
    vectors, queries = clustered()
    ids = np.arange(len(vectors), dtype=np.int64) + 7
    index = build_vector_index(ids, vectors, VectorIndexConfig(kind=kind, ivf_nprobe=5))
    save_vector_index(index, tmp_path, generation=3, model_id="m")
    loaded = load_vector_index(tmp_path, generation=3, model_id="m")
    assert index_kind(loaded) == index_kind(index) == kind
    assert load_vector_index(tmp_path, generation=4, model_id="m") is None  # a lagging file is never trusted
    before, after = index.search(queries, 10), loaded.search(queries, 10)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_array_equal(before[0], after[0])


def test_ivf_scanning_every_cell_is_exact_and_nprobe_is_per_search():
    vectors, queries = clustered()
    ids = np.arange(len(vectors), dtype=np.int64)
    index = build_vector_index(ids, vectors, VectorIndexConfig(kind="ivf", ivf_nlist=40, ivf_nprobe=1))
    truth = exact_top(vectors, queries, 10)
    _, everything = search_vectors(index, queries, 10, nprobe=40)
    np.testing.assert_array_equal(np.sort(everything, 1), np.sort(truth, 1))
    _, one_cell = search_vectors(index, queries, 200)  # the index's own nprobe, 1: fewer than 200 candidates
    assert (one_cell == -1).any() and not (everything == -1).any()
    assert inner_index(index).nprobe == 1  # the override did not change the index
    assert search_parameters(index, ef_search=50) is None  # an ivf has no ef_search: nothing to override
    with pytest.raises(ValueError, match="at least 1"):
        search_vectors(index, queries, 10, nprobe=0)


def test_hnsw_ef_search_is_per_search():
    vectors, queries = clustered()
    index = build_vector_index(np.arange(len(vectors)), vectors, VectorIndexConfig(kind="hnsw", hnsw_ef_search=10))
    _, wide = search_vectors(index, queries, 10, ef_search=2000)  # a graph search that visits every node
    np.testing.assert_array_equal(np.sort(wide, 1), np.sort(exact_top(vectors, queries, 10), 1))
    assert inner_index(index).hnsw.efSearch == 10


def make_store(folder, vectors: np.ndarray) -> IndexStore:
    """An index of VIDEOS videos whose windows do not overlap (each hit is its own moment)."""
    store = IndexStore(folder, create=True)
    store.set_identity({"model": {"id": "synthetic", "checkpoint": None, "embed_dim": DIM, "num_frames": 4},
                        "windows": {}})
    for v in range(VIDEOS):
        rows = [(10.0 * w, 10.0 * w + 5, "short") for w in range(WINDOWS)]
        store.put_video(VideoRow(0, f"/videos/{v}.mp4", 1, 1, f"{v:064d}", 10.0 * WINDOWS), rows,
                        vectors[v * WINDOWS:(v + 1) * WINDOWS])
    return store


@pytest.mark.parametrize("kind, built", [("ivf", "ivf"), ("ivf-sq8", "ivf-sq8"), ("auto", "ivf-sq8")])
def test_search_index_returns_the_exact_top_k_with_exact_scores(tmp_path, kind, built):
    """Through SearchIndex, as `vidla search` runs: ivf-sq8's scores are decoded from 8-bit codes, and the exact
    re-rank from SQLite's float vectors must give back numpy's top 10 and its cosines. `auto` beyond its exact
    limit builds ivf-sq8."""
    vectors, queries = clustered()
    store = make_store(tmp_path, vectors)
    config = VectorIndexConfig(kind=kind, ivf_nlist=20, exact_limit=len(vectors) - 1)
    assert refresh_vectors(store, "synthetic", config) == built
    kind = built
    window_ids, stored = collect(store.iter_vectors(), DIM)  # id order = insertion order
    np.testing.assert_array_equal(stored, vectors)
    index = SearchIndex(tmp_path, model=None, nprobe=20)
    assert index.vector_kind == kind
    for query in queries:
        moments = [m for video in index.search_vector(query, k=10) for m in video.moments]
        top = np.argsort(-(vectors @ query), kind="stable")[:10]
        assert sorted(m.window_id for m in moments) == sorted(window_ids[top].tolist())
        np.testing.assert_allclose(sorted((m.score for m in moments), reverse=True), (vectors @ query)[top],
                                   rtol=0, atol=1e-5)


def test_a_deletion_rebuilds_the_ivf_without_the_deleted_windows(tmp_path):
    vectors, queries = clustered()
    store = make_store(tmp_path, vectors)
    config = VectorIndexConfig(kind="ivf-sq8", ivf_nlist=20)
    refresh_vectors(store, "synthetic", config)
    before = set(collect(store.iter_vectors(), DIM)[0].tolist())
    store.delete_videos(["/videos/0.mp4", "/videos/1.mp4"])
    gone = before - set(collect(store.iter_vectors(), DIM)[0].tolist())
    assert len(gone) == 2 * WINDOWS
    assert load_vector_index(tmp_path, store.generation, "synthetic") is None  # it lags the database now
    assert refresh_vectors(store, "synthetic", config) == "ivf-sq8"
    index = load_vector_index(tmp_path, store.generation, "synthetic")
    assert index.ntotal == len(vectors) - 2 * WINDOWS
    _, found = search_vectors(index, vectors[:WINDOWS], 50, nprobe=20)  # video 0's own windows as queries
    assert not gone & set(found.ravel().tolist())


def test_vidla_search_takes_nprobe_and_rejects_absurd_values(tmp_path, built_index, capsys):
    import json

    from vidla.cli import main

    vectors, _ = clustered()
    make_store(tmp_path, vectors).close()
    assert main(["search", str(tmp_path), "anything", "--nprobe", "0"]) == 2  # bad input (vidla/errors.py)
    assert "nprobe must be between 1 and" in capsys.readouterr().err
    assert main(["search", str(built_index), "a red square moves right", "-k", "3", "--json", "--nprobe", "4",
                 "--ef-search", "8"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = SearchIndex(built_index).search_text("a red square moves right", k=3)
    assert [m["window_id"] for v in printed["results"] for m in v["moments"]] == \
           [m.window_id for v in expected for m in v.moments]


def test_refresh_rebuilds_when_the_cells_asked_for_change_and_only_then(tmp_path):
    vectors, _ = clustered()
    store = make_store(tmp_path, vectors)

    def nlist() -> int:
        index = load_vector_index(tmp_path, store.generation, "synthetic")  # held: it owns its inner index
        return inner_index(index).nlist

    refresh_vectors(store, "synthetic", VectorIndexConfig(kind="ivf", ivf_nlist=20))
    assert nlist() == 20
    written = (tmp_path / "vectors.faiss").stat().st_mtime_ns
    refresh_vectors(store, "synthetic", VectorIndexConfig(kind="ivf", ivf_nlist=20))
    refresh_vectors(store, "synthetic", VectorIndexConfig(kind="ivf"))  # no cell count asked: keep what is built
    assert (tmp_path / "vectors.faiss").stat().st_mtime_ns == written
    refresh_vectors(store, "synthetic", VectorIndexConfig(kind="ivf", ivf_nlist=10))
    assert nlist() == 10
    refresh_vectors(store, "synthetic", VectorIndexConfig(kind="ivf", ivf_nlist=10**6))  # at most n / 39 cells
    assert nlist() == len(vectors) // 39
    with pytest.raises(ValueError, match="at least 1"):
        VectorIndexConfig(ivf_nlist=0)

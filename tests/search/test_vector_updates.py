"""An index that lags the database is brought up to date by window ids (the new windows added, the gone ones
removed) instead of a rebuild, and gives what a rebuild gives; window ids are never given twice; where an update
would not be sound (no id counter when it was built, hnsw, a kind or cell count the new size calls for), it is
rebuilt."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_search_vectors import DIM, WINDOWS, clustered, exact_top, make_store, unit

import vidla.search.indexer as indexer
from vidla.search import SearchIndex, VectorIndexConfig
from vidla.search.indexer import refresh_vectors
from vidla.search.store import IndexStore, VideoRow
from vidla.search.vectors import VECTORS_INFO, indexed_ids, inner_index, read_vector_index, search_vectors


def add_video(store, name: str, vectors: np.ndarray) -> None:
    rows = [(10.0 * w, 10.0 * w + 5, "short") for w in range(len(vectors))]
    store.put_video(VideoRow(0, f"/videos/{name}.mp4", 1, 1, name.rjust(64, "0"), 10.0 * len(vectors)), rows,
                    vectors)


def store_of(folder, vectors: np.ndarray):
    """An index of videos of WINDOWS windows each (the last one shorter) holding `vectors` in order."""
    store = IndexStore(folder, create=True)
    store.set_identity({"model": {"id": "synthetic", "checkpoint": None, "embed_dim": DIM, "num_frames": 4},
                        "windows": {}})
    for v, first in enumerate(range(0, len(vectors), WINDOWS)):
        add_video(store, f"v{v}", vectors[first:first + WINDOWS])
    return store


@pytest.fixture
def count_builds(monkeypatch):
    """How many times refresh_vectors built an index from scratch."""
    built = []
    build = indexer.build_vector_index

    def counting(*args, **kwargs):
        built.append(1)
        return build(*args, **kwargs)

    monkeypatch.setattr(indexer, "build_vector_index", counting)
    return built


def test_window_ids_are_never_given_twice(tmp_path):
    vectors, _ = clustered()
    store = store_of(tmp_path, vectors[: 3 * WINDOWS])
    top = int(store.window_ids().max())
    store.delete_videos([f"/videos/v{v}.mp4" for v in range(3)])  # every window, the highest ids included
    assert len(store.window_ids()) == 0
    add_video(store, "new", vectors[:5])
    assert store.window_ids().tolist() == list(range(top + 1, top + 6))  # SQLite alone would start at 1 again
    assert store.window_id_floor == top + 6


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivf-sq8"])
def test_a_lagging_index_is_updated_and_equals_a_rebuild(tmp_path, kind, count_builds):
    vectors, queries = clustered()
    store = make_store(tmp_path / "a", vectors)
    config = VectorIndexConfig(kind=kind, ivf_nlist=None, ivf_nprobe=1000)
    assert refresh_vectors(store, "synthetic", config) == kind and len(count_builds) == 1
    rng = np.random.default_rng(1)
    store.delete_videos(["/videos/3.mp4", "/videos/17.mp4"])
    add_video(store, "late", unit(rng.standard_normal((30, DIM))))
    assert refresh_vectors(store, "synthetic", config) == kind
    assert len(count_builds) == 1  # updated, not rebuilt
    index, info = read_vector_index(tmp_path / "a", "synthetic")
    assert info["generation"] == store.generation and info["id_floor"] == store.window_id_floor
    ids = store.window_ids()
    stored = store.vectors_of(ids)
    assert sorted(indexed_ids(index).tolist()) == ids.tolist()
    # scanning every cell, the updated index returns numpy's exact top 10 over what SQLite holds now (ivf-sq8's
    # 8-bit scores only among its top 30: `SearchIndex` re-ranks those exactly)
    truth = ids[exact_top(stored, queries, 10)]
    _, found = search_vectors(index, queries, 30 if kind == "ivf-sq8" else 10, nprobe=1000)
    for row, expected in zip(found, truth):
        assert set(expected) <= set(row) and -1 not in row


def test_an_index_from_before_the_id_counter_is_rebuilt(tmp_path, count_builds):
    vectors, _ = clustered()
    store = make_store(tmp_path, vectors)
    config = VectorIndexConfig(kind="flat")
    refresh_vectors(store, "synthetic", config)
    info = json.loads((tmp_path / VECTORS_INFO).read_text())
    info["id_floor"] = None  # as an index written before vidla kept the counter
    (tmp_path / VECTORS_INFO).write_text(json.dumps(info))
    add_video(store, "late", vectors[:3])
    refresh_vectors(store, "synthetic", config)
    assert len(count_builds) == 2


def test_cells_are_trained_again_when_the_collection_outgrows_them(tmp_path, count_builds):
    vectors, _ = clustered()
    store = store_of(tmp_path, vectors[: 8 * WINDOWS])  # 400 windows
    config = VectorIndexConfig(kind="ivf")  # 4 sqrt(n) cells, at most n / 39: 10 cells for 400 windows
    refresh_vectors(store, "synthetic", config)
    add_video(store, "small", vectors[:100])  # 500 windows want 12 cells: within 2x, updated
    refresh_vectors(store, "synthetic", config)
    assert len(count_builds) == 1
    add_video(store, "big", vectors[: 1500])  # 2,000 windows want 51 cells: more than 2x, k-means again
    refresh_vectors(store, "synthetic", config)
    assert len(count_builds) == 2
    assert inner_index(read_vector_index(tmp_path, "synthetic")[0]).nlist == 51


def test_hnsw_and_a_kind_change_are_rebuilt(tmp_path, count_builds):
    vectors, _ = clustered()
    store = make_store(tmp_path, vectors)
    refresh_vectors(store, "synthetic", VectorIndexConfig(kind="hnsw"))
    add_video(store, "late", vectors[:3])
    refresh_vectors(store, "synthetic", VectorIndexConfig(kind="hnsw"))
    assert len(count_builds) == 2
    auto = VectorIndexConfig(kind="auto", exact_limit=len(vectors) + 3)  # flat up to here
    assert refresh_vectors(store, "synthetic", auto) == "flat" and len(count_builds) == 3
    add_video(store, "over", vectors[:1])  # one window past the exact limit: auto now wants ivf-sq8
    assert refresh_vectors(store, "synthetic", auto) == "ivf-sq8" and len(count_builds) == 4


def test_a_search_index_catches_up_in_memory(tmp_path):
    vectors, queries = clustered()
    store = make_store(tmp_path, vectors)
    refresh_vectors(store, "synthetic", VectorIndexConfig(kind="flat"))
    index = SearchIndex(tmp_path, model=None)
    add_video(store, "late", unit(queries[:2]))  # windows equal to the first two queries: they must come first
    index.refresh()
    new = store.window_ids()[-2:]
    for query, window in zip(queries[:2], new):
        best = index.search_vector(query, k=1)[0].moments[0]
        assert best.window_id == window and best.score == pytest.approx(1.0, abs=1e-5)

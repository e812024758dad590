"""The vector index: faiss, exact inner product up to a size, approximate beyond.

- "flat": `IndexFlatIP`, exact; every query scans every vector (17 ms of CPU per query at 100k 512-d vectors,
  168 ms at 1M, on the benchmark machine: docs/benchmarks.md).
- "hnsw": `IndexHNSWFlat` (inner product), a graph searched with `ef_search` candidates: no training, but slow to
  build; memory = the vectors + about 260 bytes per vector of graph.
- "ivf": `IndexIVFFlat`, `nlist` k-means cells (4 sqrt(n) by default, the low end of faiss's 4-16 sqrt(n)) of which
  `nprobe` are scanned per query; quick to build; memory = the vectors (2 KiB per 512-d window).
- "ivf-sq8": the same cells holding 8-bit scalar-quantised codes (one byte per dimension: 4x less memory, faster
  scans); its scores are approximate, so `SearchIndex` re-scores the candidates it fetches with the float vectors
  stored in SQLite (an exact re-rank of the top candidates).
- "auto": flat up to `exact_limit` vectors, ivf-sq8 beyond: at a million clustered 512-d windows it found the exact
  top 10 as often as ivf (recall@10 0.996) in the same end-to-end query time (3.3 ms), in a quarter of the memory
  (docs/benchmarks.md); ivf family rather than hnsw because it builds ten times faster on a small machine.

`nprobe` (ivf) and `ef_search` (hnsw) trade recall for time; they are query-time settings (`search_vectors`), so a
user changes them without rebuilding. Vectors are unit-normalised, so inner product is cosine similarity. Ids are
the windows' SQLite ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from vidla.io import atomic_write

VECTORS = "vectors.faiss"
VECTORS_INFO = "vectors.json"
KINDS = ("auto", "flat", "hnsw", "ivf", "ivf-sq8")
APPROXIMATE_SCORES = ("ivf-sq8",)  # kinds whose scores are decoded from codes, not exact


@dataclass
class VectorIndexConfig:
    kind: str = "auto"
    exact_limit: int = 100_000  # auto: exact search up to this many windows
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    ivf_nlist: int | None = None  # default 4 * sqrt(n) (`nlist`)
    ivf_nprobe: int = 32  # cells scanned per query (docs/benchmarks.md: recall@10 and time at a million windows)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"vector index kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.ivf_nlist is not None and self.ivf_nlist < 1 or self.ivf_nprobe < 1:
            raise ValueError(f"ivf nlist and nprobe must be at least 1, got {self.ivf_nlist} and {self.ivf_nprobe}")

    def resolve(self, count: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "flat" if count <= self.exact_limit else "ivf-sq8"

    def nlist(self, count: int) -> int:
        """ivf cells for `count` vectors: as set, or 4 sqrt(n); at most n / 39 (k-means needs 39 points a cell)."""
        return max(1, min(self.ivf_nlist or int(4 * np.sqrt(max(count, 1))), count // 39 or 1))

    def matches(self, index) -> bool:
        """Whether a built index is what this config asks for at its size: its kind, and its cells if set."""
        kind = index_kind(index)
        if kind != self.resolve(index.ntotal):
            return False
        if self.ivf_nlist is not None and kind.startswith("ivf"):
            return inner_index(index).nlist == self.nlist(index.ntotal)
        return True


def _faiss():
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - a dependency
        raise ImportError("vidla search needs faiss: pip install 'vidla[search]' (or faiss-cpu)") from e
    return faiss


def build_vector_index(ids: np.ndarray, vectors: np.ndarray, config: VectorIndexConfig, dim: int | None = None):
    """A faiss index over `vectors` [n, D] (float32, unit rows) with ids `ids` [n] (int64)."""
    faiss = _faiss()
    dim = vectors.shape[1] if len(vectors) else dim
    if not dim:
        raise ValueError("cannot build an empty vector index without its dimension")
    kind = config.resolve(len(vectors))
    if kind == "flat":
        inner = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = config.hnsw_ef_construction
        inner.hnsw.efSearch = config.hnsw_ef_search
    else:
        inner = _build_ivf(faiss, vectors, dim, config, sq8=kind == "ivf-sq8")
    # ivf keeps the ids in its own lists (and can remove by id); flat and hnsw number their vectors 0..n-1, so an
    # id map translates (it cannot wrap an ivf that is to be updated: it renumbers after a removal, ivf does not)
    index = inner if kind.startswith("ivf") else faiss.IndexIDMap2(inner)
    if len(vectors):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, np.int64))
    return index


def _build_ivf(faiss, vectors: np.ndarray, dim: int, config: VectorIndexConfig, sq8: bool):
    """An empty, trained IVF index: k-means cells over a sample, then (sq8) the codes' ranges."""
    n = len(vectors)
    nlist = config.nlist(n)
    quantizer = faiss.IndexFlatIP(dim)
    if sq8:
        inner = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
    else:
        inner = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    inner.cp.niter = 10  # k-means iterations: cells barely move after 10, and training dominates the build
    # k-means on a sample: 40 points per cell (faiss asks for 39) bounds the training time
    sample = vectors if n <= 40 * nlist else vectors[np.sort(np.random.default_rng(0).choice(n, 40 * nlist,
                                                                                               replace=False))]
    inner.train(np.ascontiguousarray(sample, dtype=np.float32))
    inner.nprobe = min(config.ivf_nprobe, nlist)
    return inner


def inner_index(index):
    """The index that searches (the IVF, HNSW or flat one), whether or not an id map wraps it."""
    faiss = _faiss()
    return faiss.downcast_index(index.index if isinstance(index, faiss.IndexIDMap) else index)


def indexed_ids(index) -> np.ndarray:
    """The ids an index holds (int64, unordered)."""
    faiss = _faiss()
    if isinstance(index, faiss.IndexIDMap):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    lists = faiss.extract_index_ivf(index).invlists
    out = []
    for cell in range(lists.nlist):
        size = lists.list_size(cell)
        if size:
            pointer = lists.get_ids(cell)
            out.append(faiss.rev_swig_ptr(pointer, size).copy())
            lists.release_ids(cell, pointer)
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def index_kind(index) -> str:
    faiss = _faiss()
    inner = inner_index(index)
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, faiss.IndexIVFScalarQuantizer):
        return "ivf-sq8"
    if isinstance(inner, faiss.IndexIVF):
        return "ivf"
    return "flat"


def search_parameters(index, nprobe: int | None = None, ef_search: int | None = None):
    """faiss search parameters overriding the index's own `nprobe` (ivf kinds) or `ef_search` (hnsw) for one
    search; None where nothing is overridden or the index has no such setting (flat ignores both)."""
    faiss = _faiss()
    if nprobe is not None and nprobe < 1 or ef_search is not None and ef_search < 1:
        raise ValueError(f"nprobe and ef_search must be at least 1, got {nprobe} and {ef_search}")
    inner = inner_index(index)
    if isinstance(inner, faiss.IndexIVF) and nprobe is not None:
        return faiss.SearchParametersIVF(nprobe=min(int(nprobe), inner.nlist))
    if isinstance(inner, faiss.IndexHNSW) and ef_search is not None:
        return faiss.SearchParametersHNSW(efSearch=int(ef_search))
    return None


def search_vectors(index, queries: np.ndarray, k: int, nprobe: int | None = None,
                   ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores [q, k], ids [q, k]); ids of -1 are empty slots (fewer than k vectors, or too few cells probed).
    `nprobe` / `ef_search` override the index's own for this search (`search_parameters`)."""
    k = max(1, min(int(k), index.ntotal)) if index.ntotal else 1
    params = search_parameters(index, nprobe, ef_search)
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
    return scores, ids


def save_vector_index(index, folder: Path, generation: int, model_id: str, id_floor: int | None = None) -> None:
    """Writes vectors.faiss then vectors.json (the generation it reflects), each atomically; the json is written
    last, so a crash between them leaves a generation that does not match and the file is rebuilt or updated.
    `id_floor`: the store's `window_id_floor` when the index was made (what `update_vector_index` needs)."""
    faiss = _faiss()
    data = faiss.serialize_index(index)
    with atomic_write(folder / VECTORS, "wb") as f:
        f.write(data.tobytes())
    info = {"generation": generation, "model_id": model_id, "count": int(index.ntotal), "kind": index_kind(index),
            "id_floor": id_floor}
    with atomic_write(folder / VECTORS_INFO) as f:
        json.dump(info, f)


def read_vector_index(folder: Path, model_id: str) -> tuple[Any, dict] | None:
    """(index, its vectors.json) as saved for this model, whatever generation it reflects; None if absent,
    unreadable or not the file its json describes."""
    faiss = _faiss()
    try:
        info = json.loads((folder / VECTORS_INFO).read_text())
    except (OSError, ValueError):
        return None
    if info.get("model_id") != model_id:
        return None
    try:
        data = np.fromfile(folder / VECTORS, dtype=np.uint8)
        index = faiss.deserialize_index(data)
    except (OSError, RuntimeError):
        return None
    return (index, info) if index.ntotal == info.get("count") else None


def load_vector_index(folder: Path, generation: int, model_id: str):
    """The saved index if it reflects this generation of the database, else None (it must be rebuilt or updated)."""
    saved = read_vector_index(folder, model_id)
    return saved[0] if saved is not None and saved[1].get("generation") == generation else None


def update_vector_index(index, info: dict, window_ids: np.ndarray, fetch: Callable[[np.ndarray], np.ndarray],
                        config: VectorIndexConfig) -> bool:
    """Brings an index saved at an earlier generation up to date in place: removes the windows SQLite no longer
    has and adds the new ones (`fetch(ids)` -> their vectors), instead of rebuilding from every stored vector (and,
    for the ivf kinds, running k-means again). Returns False, leaving the index unusable, where a rebuild is needed:
    - the index predates the store's id counter (`id_floor` unknown): only with it is an id that is in both the
      index and SQLite known to be the same window (ids are never given twice);
    - the kind `config` picks for the new count differs (auto: flat up to `exact_limit`, ivf-sq8 beyond), or it is
      hnsw (faiss cannot remove from its graph);
    - ivf cells were trained for a collection of another size: the cell count the rule asks for now is off by more
      than 2x, or `config.ivf_nlist` asks for another. Within that, new windows go to the old cells (and, for
      ivf-sq8, the old code ranges; the exact re-rank from SQLite keeps its scores exact).
    """
    faiss = _faiss()
    floor = info.get("id_floor")
    kind = index_kind(index)
    if floor is None or kind == "hnsw" or kind != config.resolve(len(window_ids)):
        return False
    if kind.startswith("ivf"):
        if isinstance(index, faiss.IndexIDMap):  # as vidla wrote ivf before it could update them: not removable
            return False
        built = inner_index(index).nlist
        wanted = config.nlist(len(window_ids))
        if (config.ivf_nlist is not None and built != wanted) or not wanted / 2 <= built <= wanted * 2:
            return False
    present = indexed_ids(index)
    added = np.setdiff1d(window_ids, present)
    if len(added) and added.min() < floor:  # a window older than the index that the index lacks: inconsistent
        return False
    removed = np.setdiff1d(present, window_ids)
    if len(removed):
        index.remove_ids(removed)
    if len(added):
        index.add_with_ids(np.ascontiguousarray(fetch(added), dtype=np.float32), np.ascontiguousarray(added))
    return True


def collect(batches: Iterable[tuple[np.ndarray, np.ndarray]], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenates (ids, vectors) batches."""
    ids, vectors = [], []
    for i, v in batches:
        ids.append(i)
        vectors.append(v)
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    return np.concatenate(ids), np.concatenate(vectors)

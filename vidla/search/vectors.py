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
from typing import Iterable

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
            return _faiss().downcast_index(index.index).nlist == self.nlist(index.ntotal)
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
    index = faiss.IndexIDMap2(inner)
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


def index_kind(index) -> str:
    faiss = _faiss()
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
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
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
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


def save_vector_index(index, folder: Path, generation: int, model_id: str) -> None:
    """Writes vectors.faiss then vectors.json (the generation it reflects), each atomically; the json is written
    last, so a crash between them leaves a generation that does not match and the file is rebuilt."""
    faiss = _faiss()
    data = faiss.serialize_index(index)
    with atomic_write(folder / VECTORS, "wb") as f:
        f.write(data.tobytes())
    info = {"generation": generation, "model_id": model_id, "count": int(index.ntotal), "kind": index_kind(index)}
    with atomic_write(folder / VECTORS_INFO) as f:
        json.dump(info, f)


def load_vector_index(folder: Path, generation: int, model_id: str):
    """The saved index if it reflects this generation of the database, else None (it must be rebuilt)."""
    faiss = _faiss()
    try:
        info = json.loads((folder / VECTORS_INFO).read_text())
    except (OSError, ValueError):
        return None
    if info.get("generation") != generation or info.get("model_id") != model_id:
        return None
    try:
        data = np.fromfile(folder / VECTORS, dtype=np.uint8)
        index = faiss.deserialize_index(data)
    except (OSError, RuntimeError):
        return None
    return index if index.ntotal == info.get("count") else None


def collect(batches: Iterable[tuple[np.ndarray, np.ndarray]], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenates (ids, vectors) batches."""
    ids, vectors = [], []
    for i, v in batches:
        ids.append(i)
        vectors.append(v)
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    return np.concatenate(ids), np.concatenate(vectors)

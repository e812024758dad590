"""Searching an index: a text or an example clip in, ranked moments out, grouped per video.

Moments: the best window hits are taken in score order; the best hit not yet used seeds a moment of its video, and
every other hit of that video overlapping the seed joins it (and is not reported on its own). A moment reports the
seed's start, end, scale and score (the best-matching window), how many hits it merged and their extent (the span
of the video where the query matches at any scale). Videos are ranked by their best moment.

Re-ranking (`search_text(..., rerank=N)`, a model with key-frame selection): the index holds text-free selections;
the best N windows are decoded again (their T candidate frames, each video opened once), encoded with the frames
the query's text picks (ViLA's text-guided selection), re-scored against the query and merged into moments as above.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from vidla.search.store import IndexStore, SearchIndexError, WindowRow
from vidla.search.vectors import APPROXIMATE_SCORES, VectorIndexConfig, build_vector_index, collect, index_kind, \
    read_vector_index, search_vectors, update_vector_index

MAX_K = 1000
MAX_TUNING = 65_536  # nprobe / ef_search: a bound against typos (an ivf has 4,000 cells at a million windows)
MAX_RERANK = 1000  # windows decoded and encoded again per query: ~1 s each for B/32 T=32->8 on a CPU thread
RERANK_BATCH = 8  # windows per model call while re-ranking (T candidates each: bounds memory)


@dataclass
class Moment:
    start: float
    end: float
    scale: str
    score: float
    window_id: int
    hits: int = 1
    extent: tuple[float, float] = (0.0, 0.0)


@dataclass
class RerankStats:
    """Where a re-ranked query's time went (`SearchIndex.last_rerank`)."""

    windows: int = 0
    skipped: int = 0  # windows whose video changed or could not be decoded since indexing
    decode_seconds: float = 0.0
    model_seconds: float = 0.0
    seconds: float = 0.0


@dataclass
class VideoHits:
    video_id: int
    path: str
    duration: float
    score: float
    moments: list[Moment] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for m in out["moments"]:
            m["extent"] = list(m["extent"])
        return out


def merge_moments(hits: Sequence[tuple[WindowRow, float]], k: int) -> tuple[list[Moment], list[int]]:
    """Window hits (row, score), any order -> at most `k` moments, best first (the rule in the module docstring),
    and the video id of each."""
    ordered = sorted(hits, key=lambda h: (-h[1], h[0].id))
    used: set[int] = set()
    moments: list[tuple[int, Moment]] = []
    for seed, score in ordered:
        if seed.id in used:
            continue
        members = [(w, s) for w, s in ordered if w.video_id == seed.video_id and w.id not in used
                   and w.start < seed.end and seed.start < w.end]
        used.update(w.id for w, _ in members)
        moments.append((seed.video_id, Moment(seed.start, seed.end, seed.scale, float(score), seed.id, len(members),
                                              (min(w.start for w, _ in members), max(w.end for w, _ in members)))))
        if len(moments) == k:
            break
    return [m for _, m in moments], [v for v, _ in moments]


def _check_k(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")


def check_rerank(rerank: int | None, k: int) -> None:
    _check_k(k)
    if rerank is not None and not k <= rerank <= MAX_RERANK:
        raise ValueError(f"rerank must be between k ({k}) and {MAX_RERANK} windows, got {rerank}")


def _check_tuning(nprobe: int | None, ef_search: int | None) -> None:
    for name, value in (("nprobe", nprobe), ("ef_search", ef_search)):
        if value is not None and not 1 <= value <= MAX_TUNING:
            raise ValueError(f"{name} must be between 1 and {MAX_TUNING}, got {value}")


class SearchIndex:
    """An index opened for searching. The model is loaded on the first query that needs it.

        index = SearchIndex("my.index")                      # the model recorded in the index
        index = SearchIndex("my.index", checkpoint="model.safetensors")
        results = index.search_text("a dog jumps into the pool", k=10)
        index = SearchIndex("my.index", nprobe=64)          # an ivf index: scan more cells (better recall, slower)

    `nprobe` (ivf kinds: cells scanned per query) and `ef_search` (hnsw: candidates kept while walking the graph)
    override the values the vector index was built with, for every query; each search method also takes them for
    one query. Neither changes the index on disk. An exact (flat) index ignores both.
    """

    def __init__(self, folder: str | Path, checkpoint: str | Path | None = None, model=None,
                 vectors: VectorIndexConfig | None = None, nprobe: int | None = None, ef_search: int | None = None):
        self.folder = Path(folder)
        self.store = IndexStore(self.folder, readonly=True)
        self.identity = self.store.identity()
        if "model" not in self.identity:
            raise SearchIndexError(f"{self.folder}: an empty index (no model recorded); run `vidla index` first")
        self._checkpoint, self._model = checkpoint, model
        if model is not None:
            self._check_model(model, str(checkpoint or "the given model"))
        self._vector_config = vectors or VectorIndexConfig()
        _check_tuning(nprobe, ef_search)
        self.nprobe, self.ef_search = nprobe, ef_search
        self.last_rerank: RerankStats | None = None  # where the latest re-ranked query's time went
        self._generation = self.store.generation
        self.vectors = self._load_vectors(self._vector_config)

    def close(self) -> None:
        self.store.close()

    def refresh(self) -> None:
        """Picks up what a `vidla index` run committed since the index was opened (a server stays current)."""
        generation = self.store.generation
        if generation != self._generation:
            self._generation = generation
            self.vectors = self._load_vectors(self._vector_config)

    def _load_vectors(self, config: VectorIndexConfig):
        saved = read_vector_index(self.folder, self.identity["model"]["id"])
        index = None
        if saved is not None and (saved[1].get("generation") == self._generation or
                                  update_vector_index(*saved, self.store.window_ids(), self.store.vectors_of, config)):
            index = saved[0]  # current, or brought up to date in memory (a server while `vidla index` runs)
        if index is None:  # no usable file (an interrupted first run, another model's): rebuild in memory
            dim = int(self.identity["model"]["embed_dim"])
            ids, vectors = collect(self.store.iter_vectors(), dim)
            index = build_vector_index(ids, vectors, config, dim=dim)
        self.vector_kind = index_kind(index)
        return index

    # -- the model ---------------------------------------------------------------------------------------------

    @property
    def model(self):
        if self._model is None:
            import vidla

            source = self._checkpoint or self.identity["model"].get("checkpoint")
            if source is None:
                raise SearchIndexError(f"{self.folder}: no checkpoint recorded in the index; pass one")
            model = vidla.load_model(source).eval()
            self._check_model(model, str(source))
            self._model = model
        return self._model

    def _check_model(self, model, source: str) -> None:
        from vidla.search.indexer import model_fingerprint

        expected, actual = self.identity["model"]["id"], model_fingerprint(model)
        if expected != actual:
            raise SearchIndexError(
                f"{source}: this model (id {actual}) is not the one that built the index {self.folder} "
                f"(id {expected}, from {self.identity['model'].get('checkpoint')}); its vectors would not be "
                "comparable. Search with that model, or index again with this one")

    # -- queries -------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def embed_text(self, text: str) -> np.ndarray:
        features = self.model.encode_text([text])
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()[0]

    def embed_example(self, video: str | Path, start: float | None = None, end: float | None = None) -> np.ndarray:
        """The embedding of a clip of a video file (default: all of it), sampled and decoded (at the index's decode
        size) as the index's windows were."""
        import vidla
        from vidla.search.indexer import decode_record, embed_frames

        model = self.model
        frames = vidla.load_video(video, model.num_frames, start=start, end=end,
                                  resize_to=decode_record(self.identity)["resize_to"])
        pixels = vidla.preprocess_video(frames, model.image_size)
        return embed_frames(model, pixels[None])[0]

    def search_text(self, text: str, k: int = 10, min_score: float | None = None, rerank: int | None = None,
                    **tuning) -> list[VideoHits]:
        """Moments for a text. `rerank=N` (k <= N <= MAX_RERANK; a model with frame selection): the best N windows
        are re-encoded with the frames this text selects and re-scored; moments come from those N windows only
        (`min_score` applies to the new scores), so fewer than k when overlapping windows merge."""
        if rerank is None:
            return self.search_vector(self.embed_text(text), k, min_score, **tuning)
        check_rerank(rerank, k)
        if self.model.frame_selector is None:
            raise SearchIndexError(f"rerank re-selects key frames for the query, and the model of {self.folder} has "
                                   "no frame selection (a model created with frame_selection=...); search without "
                                   "rerank")
        with torch.no_grad():
            features = self.model.encode_text([text])  # one text pass: the query vector and the selection's guide
        query = torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()[0]
        hits = self.nearest_windows(query, rerank, **tuning)
        rescored = self.rerank_windows(features, query, [i for i, _ in hits])
        moments, videos, _ = self._moments(rescored, k, min_score)
        return self._group(moments, videos)

    def nearest_windows(self, query: np.ndarray, n: int, nprobe: int | None = None,
                        ef_search: int | None = None) -> list[tuple[int, float]]:
        """The `n` best (window id, score) of the vector index for a unit query, best first (exact scores)."""
        _check_tuning(nprobe, ef_search)
        self.refresh()
        return self._nearest(query, n, nprobe, ef_search)

    def _nearest(self, query: np.ndarray, n: int, nprobe: int | None, ef_search: int | None):
        """`nearest_windows` after its checks and refresh (a caller that loops has done them once)."""
        n = min(n, self.vectors.ntotal)
        if n == 0:
            return []
        scores, ids = search_vectors(self.vectors, query[None], n,
                                     nprobe=self.nprobe if nprobe is None else nprobe,
                                     ef_search=self.ef_search if ef_search is None else ef_search)
        hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        return self._rescore(hits, query) if self.vector_kind in APPROXIMATE_SCORES else hits

    @torch.no_grad()
    def rerank_windows(self, text: str | torch.Tensor, query: np.ndarray,
                       window_ids: Sequence[int]) -> list[tuple[int, float]]:
        """(window id, cosine(query, encode_video(T candidates, text=text))) for these windows, best first; `text`
        is the query's text or its features [1, D].

        Each video is opened once and its windows' candidates decoded by the indexer's own path; a window whose
        video changed (size or mtime) or fails to decode since indexing is left out with a warning naming the file.
        Timings: `self.last_rerank`."""
        model, started, stats = self.model, time.perf_counter(), RerankStats()
        if isinstance(text, str):
            text = model.encode_text([text])
        rows = self.store.windows(list(window_ids))
        by_video: dict[int, list[int]] = defaultdict(list)
        for i in window_ids:
            if i in rows:
                by_video[rows[i].video_id].append(i)
        scored: list[tuple[int, float]] = []
        batch: list[tuple[int, torch.Tensor]] = []

        def flush() -> None:
            t = time.perf_counter()
            features = model.encode_video(torch.stack([p for _, p in batch]), text=text)
            vectors = torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()
            scored.extend(zip([i for i, _ in batch], (vectors @ np.asarray(query, np.float32)).tolist()))
            stats.model_seconds += time.perf_counter() - t
            batch.clear()

        for video_id, ids in by_video.items():
            frames = self._candidates(video_id, [rows[i] for i in ids])
            while True:
                t = time.perf_counter()
                try:  # only decoding errors are caught here; the model's are raised
                    item = next(frames, None)
                except (OSError, ValueError) as e:  # VideoDecodeError is an OSError naming the file
                    warnings.warn(f"rerank: windows of a video left out: {e}", stacklevel=2)
                    item = None
                stats.decode_seconds += time.perf_counter() - t
                if item is None:
                    break
                batch.append((ids[item[0]], item[1]))
                if len(batch) >= RERANK_BATCH:
                    flush()
        if batch:
            flush()
        stats.windows, stats.seconds = len(scored), time.perf_counter() - started
        stats.skipped = sum(len(ids) for ids in by_video.values()) - len(scored)
        self.last_rerank = stats
        return sorted(scored, key=lambda h: (-h[1], h[0]))

    def _candidates(self, video_id: int, rows: Sequence[WindowRow]) -> Iterator[tuple[int, torch.Tensor]]:
        """(position in `rows`, [T, 3, S, S] candidates) of windows of one video, decoded as the indexer does."""
        from vidla.data.decode import open_video
        from vidla.search.indexer import decode_record, iter_window_frames
        from vidla.search.windows import Window

        video, model = self.store.video(video_id), self.model
        stat = os.stat(video.path)
        if (stat.st_size, stat.st_mtime_ns) != (video.size, video.mtime_ns):
            raise ValueError(f"{video.path}: changed since it was indexed; run vidla index again")
        # the pixels the index's vectors came from: its decode size (`decode_record`), as `embed_example` does
        with open_video(video.path, resize_to=decode_record(self.identity)["resize_to"]) as reader:
            yield from iter_window_frames(reader, [Window(r.start, r.end, r.scale) for r in rows], model.num_frames,
                                          model.image_size)

    def search_example(self, video: str | Path, start: float | None = None, end: float | None = None, k: int = 10,
                       min_score: float | None = None, **tuning) -> list[VideoHits]:
        """"More like this moment": the query is a clip of a video file."""
        return self.search_vector(self.embed_example(video, start, end), k, min_score, **tuning)

    def search_window(self, window_id: int, k: int = 10, min_score: float | None = None, **tuning) -> list[VideoHits]:
        """"More like this" for a window already in the index."""
        vector = self.store.vector(window_id)
        if vector is None:
            raise KeyError(f"no window {window_id} in {self.folder}")
        return self.search_vector(vector, k, min_score, **tuning)

    def search_vector(self, query: np.ndarray, k: int = 10, min_score: float | None = None,
                      nprobe: int | None = None, ef_search: int | None = None) -> list[VideoHits]:
        """Moments for a unit query vector: up to `k` moments, grouped per video, best video first. `nprobe` /
        `ef_search`: this query's recall-time trade-off (default: the index's, or this SearchIndex's)."""
        _check_k(k)
        _check_tuning(nprobe, ef_search)
        self.refresh()
        total = self.vectors.ntotal
        if total == 0:
            return []
        fetch = min(total, max(100, 20 * k))
        while True:  # merging may fold many hits into one moment: fetch more until k moments or every window
            moments, videos, kept = self._moments(self._nearest(query, fetch, nprobe, ef_search), k, min_score)
            if len(moments) >= k or fetch >= total or kept < fetch:  # kept < fetch: the rest score below min_score
                break
            fetch = min(total, fetch * 4)
        return self._group(moments, videos)

    def _moments(self, hits: list[tuple[int, float]], k: int,
                 min_score: float | None) -> tuple[list[Moment], list[int], int]:
        """Up to `k` moments merged from scored windows at or above `min_score`: (moments, their videos, how many
        windows were kept)."""
        keep = [(i, s) for i, s in hits if min_score is None or s >= min_score]
        rows = self.store.windows([i for i, _ in keep])
        moments, videos = merge_moments([(rows[i], s) for i, s in keep if i in rows], k)
        return moments, videos, len(keep)

    def _rescore(self, hits: list[tuple[int, float]], query: np.ndarray) -> list[tuple[int, float]]:
        """Exact scores from the float vectors in SQLite for hits whose scores were decoded from 8-bit codes: the
        reported score is the true cosine, and the order among the candidates is exact (an exact re-rank)."""
        vectors = self.store.window_vectors([i for i, _ in hits])
        ids = [i for i, _ in hits if i in vectors]
        if not ids:
            return []
        scores = np.stack([vectors[i] for i in ids]) @ np.asarray(query, dtype=np.float32)
        return sorted(zip(ids, scores.tolist()), key=lambda h: -h[1])

    def _group(self, moments: list[Moment], videos: list[int]) -> list[VideoHits]:
        grouped: dict[int, VideoHits] = {}
        for video_id, moment in zip(videos, moments):
            if video_id not in grouped:
                row = self.store.video(video_id)
                grouped[video_id] = VideoHits(video_id, row.path, row.duration, moment.score)
            grouped[video_id].moments.append(moment)
        return list(grouped.values())  # moments arrive best first, so videos are in order of their best moment

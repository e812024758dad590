"""`build_index`: embed the windows of a collection of videos into a search index, incrementally and resumably.

A run lists the videos, compares each with the index by size and mtime (and, when those changed, by content hash),
and embeds only new or changed videos; videos no longer listed are dropped. A file whose content is already in the
index under another path (a rename, a copy) takes its vectors without being decoded. Each video is committed with
all its windows in one transaction, so a run killed at any point resumes with the finished videos kept and nothing
duplicated.

Decoding runs in a thread beside the model: each video is opened once and the frames of all its windows are decoded
in one forward pass (`VideoReader.frames_at` on the sorted sampling instants, a chunk at a time to bound memory),
preprocessed once per frame, and handed to the model in batches that may mix videos. Frames are scaled inside the
decoder to the size training's loader decodes to (`vidla.data.transforms.decode_size`: shorter side 2 S for a model
of input size S), so the index sees training's pixels and a 4K video's chunk holds 64 frames of 448 px, not of 4K;
`IndexSettings.decode_size=None` decodes at the source's size (the pixels of indexes built before). The size is
recorded in the index, and later runs and searches by example decode as the index did.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from vidla.search.store import IndexStore, SearchIndexError, VideoRow
from vidla.search.vectors import VectorIndexConfig, build_vector_index, collect, save_vector_index
from vidla.search.windows import Window, WindowConfig, plan_windows, window_timestamps

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp")
_HASH_CHUNK = 1 << 20
_PREPROCESS_FRAMES = 8


@dataclass
class IndexReport:
    videos: int = 0  # listed (this shard)
    embedded: int = 0
    unchanged: int = 0
    touched: int = 0  # same content, new mtime
    copied: int = 0  # same content as an indexed video under another path
    deleted: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    windows: int = 0  # embedded in this run
    total_windows: int = 0  # in the index after the run
    decode_seconds: float = 0.0
    model_seconds: float = 0.0
    seconds: float = 0.0
    vector_index: str = ""

    def summary(self) -> str:
        rate = self.windows / self.seconds if self.seconds else 0.0
        return (f"{self.videos} videos: {self.embedded} embedded ({self.windows} windows, {rate:.1f} windows/s), "
                f"{self.unchanged} unchanged, {self.touched + self.copied} reused, {self.deleted} dropped, "
                f"{len(self.failed)} failed; {self.total_windows} windows in the index ({self.vector_index})")


# ----------------------------------------------------------------------------------------------- identity

def model_fingerprint(model: torch.nn.Module) -> str:
    """A hash of the model's config and every weight: two models share it only if they embed alike."""
    digest = hashlib.sha256()
    config = getattr(model, "config", None)
    digest.update(json.dumps(asdict(config) if config is not None else {}, sort_keys=True, default=str).encode())
    for key, value in sorted(model.state_dict().items()):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:32]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- listing

def list_videos(inputs: Sequence[str | Path]) -> list[str]:
    """Absolute paths of the videos under folders (recursively, by extension), listed files, or the `video`
    field of JSONL manifests; sorted, without repeats."""
    return sorted(_list_videos_keyed(inputs))


def _list_videos_keyed(inputs: Sequence[str | Path]) -> dict[str, str]:
    """Each video's absolute path -> its shard key: the path relative to the folder (or manifest's folder) it was
    found under, or the file name of a listed file. The key, not the absolute path, decides the shard, so machines
    that mount the collection at different places still split it alike."""
    from vidla.data.manifest import read_manifest_resolved

    found: dict[str, str] = {}
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            for folder, _, names in os.walk(path):
                for name in names:
                    if name.lower().endswith(VIDEO_EXTENSIONS) and not name.startswith("."):
                        full = os.path.join(folder, name)
                        found.setdefault(os.path.abspath(full), os.path.relpath(full, path))
        elif path.suffix == ".jsonl":
            for record in read_manifest_resolved(path):
                found.setdefault(os.path.abspath(record.video), os.path.relpath(record.video, path.parent))
        elif path.is_file():
            found.setdefault(os.path.abspath(path), path.name)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return found


def in_shard(key: str, shard: tuple[int, int]) -> bool:
    """Stable assignment of a video to one of N shards by a hash of its shard key (adding files moves no others)."""
    index, count = shard
    return count == 1 or int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % count == index


# ----------------------------------------------------------------------------------------------- decoding

@dataclass
class _VideoJob:
    path: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass
class _Decoded:
    """A video's header and windows (sent before its frames), its end, or its failure."""

    job: _VideoJob
    windows: list[Window] | None = None
    info: Any = None
    error: str | None = None
    done: bool = False


def iter_window_frames(reader, windows: Sequence[Window], num_frames: int, image_size: int,
                       chunk: int = 64) -> Iterator[tuple[int, torch.Tensor]]:
    """(window position, preprocessed frames [T, 3, S, S]) for each window, decoding the video once, forward.

    The sampling instants of all windows are decoded in ascending order, `chunk` distinct instants per call to the
    reader; each frame is preprocessed once and kept only until the last window that needs it is out.
    """
    from vidla.data.transforms import preprocess_video

    times = [window_timestamps(w, num_frames) for w in windows]
    order = sorted(range(len(windows)), key=lambda i: (max(times[i]), i))  # ready once its last frame is decoded
    instants = sorted({t for ts in times for t in ts})
    cache: dict[float, torch.Tensor] = {}
    next_window = 0
    for begin in range(0, len(instants), chunk):
        wanted = instants[begin:begin + chunk]
        frames = torch.from_numpy(reader.frames_at(wanted).frames)
        # a few frames at a time: the transform's float copy of 64 frames would be 4x the decoded chunk
        pixels = torch.cat([preprocess_video(frames[i:i + _PREPROCESS_FRAMES], image_size)
                            for i in range(0, len(frames), _PREPROCESS_FRAMES)])
        del frames
        cache.update(zip(wanted, pixels))
        decoded_to = wanted[-1]
        while next_window < len(order) and max(times[order[next_window]]) <= decoded_to:
            i = order[next_window]
            yield i, torch.stack([cache[t] for t in times[i]])
            next_window += 1
        remaining = [min(times[order[j]]) for j in range(next_window, len(order))]
        keep_from = min(remaining) if remaining else float("inf")
        for t in [t for t in cache if t < keep_from]:
            del cache[t]


def _decode_worker(jobs: Sequence[_VideoJob], windows: WindowConfig, num_frames: int, image_size: int,
                   out: queue.Queue, stop: threading.Event, timer: list[float], resize_to: int | None = None) -> None:
    """Producer thread: for each video, a header item, its windows' frames, then an end (or a failure) item."""
    from vidla.data.decode import open_video

    def put(item) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    try:
        for job in jobs:
            if stop.is_set():
                return
            started = time.perf_counter()
            try:
                with open_video(job.path, resize_to=resize_to) as reader:
                    planned = plan_windows(reader.info.duration, windows)
                    timer[0] += time.perf_counter() - started
                    put(_Decoded(job, windows=planned, info=reader.info))
                    started = time.perf_counter()
                    for position, pixels in iter_window_frames(reader, planned, num_frames, image_size):
                        timer[0] += time.perf_counter() - started
                        put((position, pixels))
                        started = time.perf_counter()
            except (OSError, ValueError) as e:  # VideoDecodeError is an OSError and names the file
                timer[0] += time.perf_counter() - started
                put(_Decoded(job, error=str(e), done=True))
                continue
            timer[0] += time.perf_counter() - started
            put(_Decoded(job, done=True))
    finally:
        put(None)


# ----------------------------------------------------------------------------------------------- the run

@dataclass
class IndexSettings:
    windows: WindowConfig = field(default_factory=WindowConfig)
    vectors: VectorIndexConfig = field(default_factory=VectorIndexConfig)
    batch_size: int = 8
    shard: tuple[int, int] = (0, 1)
    progress: bool = True
    prefetch: int = 64  # decoded windows waiting for the model
    # Shorter side frames are decoded to: "auto" = vidla.data.transforms.decode_size(model input size), as training's
    # loader; None (or "full") = the source size; or pixels. On an existing index, "auto" keeps the size it was built
    # with (an index from before this option: full size) and any other value must equal it.
    decode_size: int | str | None = "auto"

    def __post_init__(self) -> None:
        from vidla.data.transforms import resolve_decode_size

        resolve_decode_size(self.decode_size, 1)  # a bad value fails here, before any index is opened


def build_index(inputs: Sequence[str | Path], out: str | Path, checkpoint: str | Path | None = None, *,
                model=None, settings: IndexSettings | None = None) -> IndexReport:
    """Indexes (or updates the index of) the videos under `inputs` into the index folder `out`.

    The model is `vidla.load_model(checkpoint)`, or `model` (with `checkpoint` naming it in the index).
    """
    import vidla

    settings = settings or IndexSettings()
    started = time.perf_counter()
    if model is None:
        if checkpoint is None:
            raise ValueError("build_index needs a checkpoint (or a model)")
        model = vidla.load_model(checkpoint)
    model.eval()
    report = IndexReport()
    with IndexStore(out, create=True) as store:
        resize_to = index_decode_size(store.identity(), settings.decode_size, model.image_size)
        identity = index_identity(model, checkpoint, settings.windows, resize_to)
        check_identity(store, identity, out)
        paths = sorted(p for p, key in _list_videos_keyed(inputs).items() if in_shard(key, settings.shard))
        report.videos = len(paths)
        jobs = _plan(store, paths, report, settings.progress)
        _embed(store, model, jobs, settings, report, resize_to)
        report.total_windows = store.count_windows()
        report.vector_index = refresh_vectors(store, identity["model"]["id"], settings.vectors)
    report.seconds = time.perf_counter() - started
    return report


def decode_record(identity: dict[str, Any]) -> dict[str, Any]:
    """How an index decodes frames; an index made before decode-time scaling decoded at full size."""
    return identity.get("decode", {"resize_to": None})


def index_decode_size(existing: dict[str, Any], option: int | str | None, image_size: int) -> int | None:
    """The `resize_to` of a run: the option resolved (vidla.data.transforms.resolve_decode_size), except that "auto"
    on an existing index keeps the index's own, so that its vectors and the new ones come from the same pixels
    (`check_identity` refuses any other mismatch)."""
    from vidla.data.transforms import resolve_decode_size

    if existing and option == "auto":
        return decode_record(existing)["resize_to"]
    return resolve_decode_size(option, image_size)


def _describe_size(resize_to: int | None) -> str:
    return "full size" if resize_to is None else f"a shorter side of {resize_to} px"


def index_identity(model, checkpoint: str | Path | None, windows: WindowConfig,
                   resize_to: int | None = None) -> dict[str, Any]:
    config = model.config
    return {
        "model": {"id": model_fingerprint(model),
                  "checkpoint": None if checkpoint is None else str(Path(checkpoint).expanduser().resolve()),
                  "temporal": config.temporal, "num_frames": config.num_frames, "image_size": model.image_size,
                  "embed_dim": config.embed_dim,
                  # text-free key-frame selection: num_frames candidates, one encoded per segment (None: all)
                  "frame_selection": asdict(config.frame_selection) if config.frame_selection else None},
        "windows": asdict(windows),
        "decode": {"resize_to": resize_to},
    }


def check_identity(store: IndexStore, identity: dict[str, Any], where: str | Path) -> None:
    """Stamps a new index with the model and windows; refuses to add to one made with others."""
    existing = store.identity()
    if not existing:
        store.set_identity(identity)
        return
    if existing["model"]["id"] != identity["model"]["id"]:
        raise SearchIndexError(
            f"{where}: the index was built with another model (id {existing['model']['id']}, from "
            f"{existing['model'].get('checkpoint')}); this one is {identity['model']['id']}. Use that model, or "
            f"another --out for a new index")
    if existing["windows"] != identity["windows"]:
        raise SearchIndexError(f"{where}: the index uses windows {existing['windows']}, not "
                               f"{identity['windows']}; use the same window options or another --out")
    if decode_record(existing) != decode_record(identity):
        raise SearchIndexError(f"{where}: the index decodes frames at "
                               f"{_describe_size(decode_record(existing)['resize_to'])}, not "
                               f"{_describe_size(decode_record(identity)['resize_to'])}; use the same decode size (or "
                               "the default, auto) or another --out")
    if existing["model"].get("checkpoint") != identity["model"]["checkpoint"] and identity["model"]["checkpoint"]:
        store.set_identity({**existing, "model": {**existing["model"], "checkpoint": identity["model"]["checkpoint"]}})


def _plan(store: IndexStore, paths: list[str], report: IndexReport, progress: bool = False) -> list[_VideoJob]:
    """Sorts the listed videos into unchanged / re-stamped / copied / to embed; drops the unlisted ones."""
    from tqdm.auto import tqdm

    indexed, failures = store.videos(), store.failures()
    by_hash: dict[str, VideoRow] = {v.sha256: v for v in indexed.values()}
    jobs: list[_VideoJob] = []
    for path in tqdm(paths, desc="checking", unit="file", disable=not progress or len(paths) < 1000):
        try:
            stat = os.stat(path)
        except OSError as e:
            report.failed[path] = f"{path}: {e.strerror or e}"
            continue
        old = indexed.get(path)
        if old is not None and (old.size, old.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            report.unchanged += 1
            continue
        failure = failures.get(path)
        if failure is not None and failure[:2] == (stat.st_size, stat.st_mtime_ns):
            report.failed[path] = failure[2]  # unchanged since it failed: not retried
            continue
        digest = file_sha256(path)
        if old is not None and old.sha256 == digest:
            store.touch_video(old.id, stat.st_size, stat.st_mtime_ns)
            report.touched += 1
            continue
        source = by_hash.get(digest)
        if source is not None:
            windows, vectors = store.video_windows(source.id)
            store.put_video(VideoRow(0, path, stat.st_size, stat.st_mtime_ns, digest, source.duration, source.width,
                                     source.height), windows, vectors)
            report.copied += 1
            continue
        jobs.append(_VideoJob(path, stat.st_size, stat.st_mtime_ns, digest))
    listed = set(paths)
    report.deleted = store.delete_videos([p for p in list(indexed) + list(failures) if p not in listed])
    return jobs


@torch.no_grad()
def embed_frames(model, pixels: torch.Tensor) -> np.ndarray:
    """[B, T, 3, S, S] preprocessed windows -> unit float32 vectors [B, D]."""
    features = model.encode_video(pixels.to(model.device))
    return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()


class _Pending:
    """A video whose windows are on their way through the model."""

    def __init__(self, header: _Decoded):
        self.header, self.vectors = header, [None] * len(header.windows)
        self.finished = False  # all its windows have been decoded
        self.error: str | None = None

    def ready(self) -> bool:
        return self.finished and (self.error is not None or all(v is not None for v in self.vectors))


def _embed(store: IndexStore, model, jobs: list[_VideoJob], settings: IndexSettings, report: IndexReport,
           resize_to: int | None) -> None:
    if not jobs:
        return
    from tqdm.auto import tqdm

    config = model.config
    items: queue.Queue = queue.Queue(maxsize=settings.prefetch)
    stop, decode_time = threading.Event(), [0.0]
    worker = threading.Thread(target=_decode_worker, daemon=True,
                              args=(jobs, settings.windows, config.num_frames, model.image_size, items, stop,
                                    decode_time, resize_to))
    bar = tqdm(total=len(jobs), unit="video", desc="indexing", disable=not settings.progress)
    pending: list[_Pending] = []
    batch: list[tuple[_Pending, int, torch.Tensor]] = []
    started = time.perf_counter()

    def flush() -> None:
        if batch:
            t = time.perf_counter()
            vectors = embed_frames(model, torch.stack([pixels for _, _, pixels in batch]))
            report.model_seconds += time.perf_counter() - t
            for (video, position, _), vector in zip(batch, vectors):
                video.vectors[position] = vector
            report.windows += len(batch)
            batch.clear()
        while pending and pending[0].ready():  # commit in order, each video whole
            _commit(store, pending.pop(0), report)
            bar.update(1)
            elapsed = time.perf_counter() - started
            bar.set_postfix(windows_per_s=f"{report.windows / elapsed:.1f}" if elapsed else "-")

    worker.start()
    try:
        while (item := items.get()) is not None:
            if not isinstance(item, _Decoded):  # (window position, frames) of the latest video
                batch.append((pending[-1], *item))
                if len(batch) >= settings.batch_size:
                    flush()
                continue
            if item.windows is not None:
                pending.append(_Pending(item))
            elif not pending or pending[-1].header.job is not item.job:  # failed before its header
                pending.append(_Pending(_Decoded(item.job, windows=[])))
            if item.done:
                pending[-1].finished, pending[-1].error = True, item.error
                if items.empty():  # the decoder is behind: embed what is here, so finished videos commit now
                    flush()
        flush()
    finally:
        stop.set()
        worker.join(timeout=5)
        bar.close()
    report.decode_seconds += decode_time[0]


def _commit(store: IndexStore, video: _Pending, report: IndexReport) -> None:
    job = video.header.job
    if video.error is not None:
        store.put_failure(job.path, job.size, job.mtime_ns, video.error)
        report.failed[job.path] = video.error
        return
    info = video.header.info
    windows = [(w.start, w.end, w.scale) for w in video.header.windows]
    store.put_video(VideoRow(0, job.path, job.size, job.mtime_ns, job.sha256, info.duration, info.width,
                             info.height), windows, np.stack(video.vectors))
    report.embedded += 1


def refresh_vectors(store: IndexStore, model_id: str, config: VectorIndexConfig, force: bool = False) -> str:
    """Brings vectors.faiss up to the database and returns its kind: kept when it reflects this generation and is
    what `config` asks for (kind, cells); updated by window ids when an earlier one can be (a few videos added to a
    million windows cost their own vectors, not a rebuild: `update_vector_index`); else, or when forced, rebuilt
    from SQLite."""
    from vidla.search.vectors import index_kind, read_vector_index, update_vector_index

    saved = None if force else read_vector_index(store.folder, model_id)
    if saved is not None:
        index, info = saved
        current = info.get("generation") == store.generation
        if current and config.matches(index):
            return index_kind(index)
        if not current and update_vector_index(index, info, store.window_ids(), store.vectors_of, config):
            save_vector_index(index, store.folder, store.generation, model_id, store.window_id_floor)
            return index_kind(index)
    floor = store.start_window_counter()  # before reading: every window read is below it
    dim = int(store.identity()["model"]["embed_dim"])
    ids, vectors = collect(store.iter_vectors(), dim)
    index = build_vector_index(ids, vectors, config, dim=dim)
    save_vector_index(index, store.folder, store.generation, model_id, floor)
    return index_kind(index)


def merge_indexes(shards: Sequence[str | Path], out: str | Path, vectors: VectorIndexConfig | None = None,
                  progress: bool = True) -> IndexReport:
    """Merges the indexes of `vidla index --shard i/N` runs into `out` (new, or a previous merge of them).

    The shards must share the model and the window plan, and hold disjoint videos. Each video is copied in its own
    transaction, so an interrupted merge resumes."""
    from tqdm.auto import tqdm

    if not shards:
        raise ValueError("no shard indexes to merge")
    started, report = time.perf_counter(), IndexReport()
    sources = [IndexStore(s, readonly=True) for s in shards]
    try:
        identities = [s.identity() for s in sources]
        for shard, identity in zip(shards, identities):
            if identity.get("model", {}).get("id") != identities[0].get("model", {}).get("id") or \
                    identity.get("windows") != identities[0].get("windows") or \
                    decode_record(identity) != decode_record(identities[0]):
                raise SearchIndexError(f"{shard}: made with another model, window plan or decode size than "
                                       f"{shards[0]}; shards must be indexed alike")
        owner: dict[str, str] = {}
        for shard, source in zip(shards, sources):
            for path in source.videos():
                if path in owner:
                    raise SearchIndexError(f"{path} is in two shards ({owner[path]} and {shard})")
                owner[path] = str(shard)
        with IndexStore(out, create=True) as store:
            check_identity(store, identities[0], out)
            done = store.videos()
            report.deleted = store.delete_videos([p for p in done if p not in owner])
            todo = [(source, video) for source in sources for video in source.videos().values()
                    if video.path not in done or done[video.path].sha256 != video.sha256]
            report.videos, report.unchanged = len(owner), len(owner) - len(todo)
            for source, video in tqdm(todo, desc="merging", unit="video", disable=not progress):
                windows, embedded = source.video_windows(video.id)
                store.put_video(video, windows, embedded)
                report.copied += 1
            report.total_windows = store.count_windows()
            report.vector_index = refresh_vectors(store, identities[0]["model"]["id"], vectors or VectorIndexConfig())
    finally:
        for source in sources:
            source.close()
    report.seconds = time.perf_counter() - started
    return report

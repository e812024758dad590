"""The curation pipeline: source videos -> subtitles -> sentences -> multi-scale clips -> frame captions ->
clip texts (summaries) -> a vidla manifest and statistics.

Work is done video by video; each stage's result is a unit in the state store (vidla.curate.state), so a
rerun, after a crash or kill -9, skips finished units and finishes the rest. Outputs are written at the end,
from the store, in input order: a rerun's output equals an uninterrupted run's byte for byte. A video that
fails at some stage is recorded with its error (failures.jsonl) and does not stop the others.

Sharding: `shard=(i, n)` takes the i-th of n contiguous slices of the input; each shard writes its own
outputs (manifest-0000i-of-0000n.jsonl, ...) and `merge` concatenates them in order, which gives exactly the
output of one unsharded run.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from vidla.curate.backends import Captioner, TextGenerator, build_captioner, build_generator, check_kind
from vidla.curate.clipping import Clip, clip_subtitle, cut_clips
from vidla.curate.config import STAGES, CurateConfig
from vidla.curate.frames import frame_times, read_frames, video_duration
from vidla.curate.sentences import Sentence, build_punctuator, sentences_from_segments
from vidla.curate.state import StateStore, canonical_json, text_key, unit_key
from vidla.curate.stats import CurationStats, milliseconds, read_stats, write_stats
from vidla.curate.subtitles import Segment, SubtitleError, find_sidecar, read_embedded, read_subtitles
from vidla.curate.summarize import TextRule, clip_texts, join_captions
from vidla.data.manifest import ClipRecord, iter_manifest, write_manifest
from vidla.io import atomic_write

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".flv", ".ts", ".mpg", ".mpeg")

# What each stage reads. Captions depend on the video alone, so changing the clipping keeps them.
DEPENDS: dict[str, tuple[str, ...]] = {"subtitles": (), "sentences": ("subtitles",), "clips": ("sentences",),
                                       "captions": (), "texts": ("subtitles", "clips", "captions")}


@dataclass(frozen=True)
class SourceVideo:
    id: str
    path: Path
    subtitles: Path | None = None  # an explicit subtitle file; else one is looked for beside the video


class _Failed(Exception):
    def __init__(self, stage: str, error: str):
        super().__init__(f"{stage}: {error}")
        self.stage, self.error = stage, error


class _Pending(Exception):
    """A stage that this run does not compute and the store does not hold yet."""


def read_sources(source: str | Path) -> list[SourceVideo]:
    """Source videos from a JSONL manifest (`video`, optional `id` and `subtitles`, paths relative to the
    manifest's folder) or from a folder searched recursively for video files (ids: relative paths)."""
    source = Path(source)
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        videos = [SourceVideo(p.relative_to(source).with_suffix("").as_posix(), p.resolve()) for p in paths]
    else:
        videos = []
        for record in iter_manifest(source):
            subtitles = record.extra.get("subtitles")
            path = record.resolve(source.parent).resolve()
            videos.append(SourceVideo(str(record.id or Path(record.video).with_suffix("").as_posix()), path,
                                      None if not subtitles else (source.parent / subtitles).resolve()))
    seen: set[str] = set()
    for video in videos:
        if video.id in seen:
            raise ValueError(f"{source}: video id {video.id!r} appears twice; ids must be unique")
        seen.add(video.id)
    return videos


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' (0 <= i < N) -> (i, N)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes i/N, e.g. 0/4, got {text!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < N")
    return index, count


def shard_slice(count: int, index: int, shards: int) -> slice:
    return slice(count * index // shards, count * (index + 1) // shards)


def output_paths(output: str | Path, index: int = 0, shards: int = 1) -> dict[str, Path]:
    """The files a run (or one shard of it) writes."""
    output = Path(output)
    suffix = "" if shards == 1 else f"-{index:05d}-of-{shards:05d}"
    return {"manifest": output / f"manifest{suffix}.jsonl", "failures": output / f"failures{suffix}.jsonl",
            "stats": output / f"stats{suffix}.json", "state": output / f"state{suffix}.sqlite"}


@dataclass
class RunReport:
    videos: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    seconds: float = 0.0
    stats: CurationStats | None = None
    outputs: dict[str, Path] = field(default_factory=dict)


class Curator:
    """Runs the stages for one video at a time against a state store. Backends are built from the config on
    first use (a rerun that finds everything done loads no model); `captioner`/`generator` replace them."""

    def __init__(self, config: CurateConfig, store: StateStore, stages: Sequence[str] = STAGES,
                 captioner: Captioner | None = None, generator: TextGenerator | None = None):
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage(s) {sorted(unknown)}; stages: {', '.join(STAGES)}")
        self.config, self.store, self.stages = config, store, set(stages)
        self._objects: dict[str, Any] = {"punctuator": _UNBUILT,
                                         "captioner": _UNBUILT if captioner is None else captioner,
                                         "generator": _UNBUILT if generator is None else generator}
        self._build_lock = threading.Lock()
        # Local models run one call at a time; HTTP backends bound their own concurrency.
        self._call_locks = {role: (threading.Lock() if backend.kind != "openai" else None)
                            for role, backend in (("captioner", config.captions.backend),
                                                  ("generator", config.summaries.backend))}
        if "captions" in self.stages:
            check_kind(config.captions.backend, "captioner")
        if "texts" in self.stages:
            check_kind(config.summaries.backend, "summarizer")
        self.rule = TextRule(tuple(config.summaries.scales), config.summaries.max_tokens,
                             config.summaries.summarize_overlong, config.summaries.max_input_words)

    # -- stage keys ----------------------------------------------------------------------------------------

    def config_params(self) -> dict[str, dict[str, Any]]:
        """Each stage's parameters that do not depend on the video."""
        c = self.config
        return {
            "subtitles": {"source": c.subtitles.source, "languages": list(c.subtitles.languages)},
            "sentences": {"punctuator": c.sentences.punctuator, "pause_seconds": c.sentences.pause_seconds,
                          "max_words": c.sentences.max_words, "label_map": c.sentences.label_map},
            "clips": {"scales": [asdict(s) for s in c.clips.scales], "max_gap": c.clips.max_gap},
            "captions": {"backend": c.captions.backend.identity(), "fps": c.captions.fps,
                         "max_frames": c.captions.max_frames, "max_side": c.captions.max_side},
            "texts": {"backend": c.summaries.backend.identity(), "rule": asdict(self.rule)},
        }

    def config_hash(self) -> str:
        return unit_key("config", self.config_params())

    def keys(self, video: SourceVideo) -> dict[str, str]:
        return self._plan(video)[0]

    def _plan(self, video: SourceVideo) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        """Each stage's key and parameters for this video. Keys hash parameters, never results, so they are
        known before anything runs."""
        params = self.config_params()
        params["subtitles"]["file"] = str(self._subtitle_file(video))
        keys: dict[str, str] = {}
        for stage in STAGES:
            keys[stage] = unit_key(stage, params[stage], [keys[d] for d in DEPENDS[stage]])
        return keys, params

    def _subtitle_file(self, video: SourceVideo) -> Path | None:
        if video.subtitles is not None:
            return video.subtitles
        if self.config.subtitles.source == "embedded":
            return None
        return find_sidecar(video.path, self.config.subtitles.languages)

    # -- running -------------------------------------------------------------------------------------------

    def process(self, video: SourceVideo) -> str:
        """Runs what is missing for one video: 'done', 'failed' or 'pending'."""
        keys, params = self._plan(video)
        results: dict[str, Any] = {}
        try:
            for stage in STAGES:
                if stage == "captions" and self.config.captions.backend.kind == "none":
                    results[stage] = None
                    continue
                if any(dep in results and results[dep] is _PENDING for dep in DEPENDS[stage]):
                    results[stage] = _PENDING
                    continue
                results[stage] = self._unit(video, stage, keys[stage], params[stage], results)
        except _Failed:
            return "failed"
        return "pending" if any(r is _PENDING for r in results.values()) else "done"

    def _unit(self, video: SourceVideo, stage: str, key: str, params: dict[str, Any],
              results: dict[str, Any]) -> Any:
        unit = self.store.get(video.id, stage, key)
        if unit is not None and unit.status == "done":
            return unit.result
        if unit is not None and (stage not in self.stages or not self.config.run.retry_failed):
            raise _Failed(stage, unit.error or "failed")
        if stage not in self.stages:
            return _PENDING
        self.store.record_params(key, stage, params)
        started = time.monotonic()
        try:
            result = getattr(self, f"_compute_{stage}")(video, results)
        except Exception as e:  # any error of this video's stage is data; the run goes on
            self.store.put_failed(video.id, stage, key, f"{type(e).__name__}: {e}", time.monotonic() - started)
            raise _Failed(stage, str(e)) from e
        return self.store.put_done(video.id, stage, key, result, time.monotonic() - started)

    def _compute_subtitles(self, video: SourceVideo, results: dict[str, Any]) -> dict[str, Any]:
        duration = video_duration(video.path)
        sidecar = self._subtitle_file(video)
        skipped = 0
        if sidecar is not None:
            parsed = read_subtitles(sidecar)  # malformed cues are skipped, counted here and logged
            segments, source, skipped = parsed.segments, sidecar.name, parsed.skipped
        elif self.config.subtitles.source == "sidecar":
            raise SubtitleError(f"{video.path}: no subtitle file beside the video")
        else:
            segments, source = read_embedded(video.path, self.config.subtitles.languages)
        segments = [Segment(s.start, min(s.end, duration), s.text, s.word_starts)
                    for s in segments if s.start < duration]
        if not segments:
            raise SubtitleError(f"{video.path}: the subtitles ({source}) have no text")
        result = {"duration": duration, "source": source, "segments": [s.to_json() for s in segments]}
        return result | ({"skipped_cues": skipped} if skipped else {})

    def _compute_sentences(self, video: SourceVideo, results: dict[str, Any]) -> list[list[Any]]:
        segments = [Segment.from_json(s) for s in results["subtitles"]["segments"]]
        punctuator = self._lazy("punctuator", self._build_punctuator)
        return [s.to_json() for s in sentences_from_segments(segments, punctuator, self.config.sentences.max_words)]

    def _compute_clips(self, video: SourceVideo, results: dict[str, Any]) -> dict[str, list[list[Any]]]:
        sentences = [Sentence.from_json(s) for s in results["sentences"]]
        return {scale.name: [[c.start, c.end, c.first, c.last]
                             for c in cut_clips(sentences, scale, self.config.clips.max_gap)]
                for scale in self.config.clips.scales}

    def _compute_captions(self, video: SourceVideo, results: dict[str, Any]) -> list[list[Any]]:
        c = self.config.captions
        times = frame_times(video_duration(video.path), c.fps, c.max_frames)
        captioner = self._lazy("captioner", lambda: build_captioner(c.backend))

        def caption(batch: list[float]) -> list[str]:
            frames = read_frames(video.path, batch, c.max_side)
            return self._call("captioner", lambda: captioner.caption(frames))

        namespace = unit_key("frame-captions", {k: v for k, v in self.config_params()["captions"].items()
                                                if k in ("backend", "max_side")})
        captions = self._memoized(namespace, [f"{video.id}@{t:.3f}" for t in times], times, caption)
        return [[t, text] for t, text in zip(times, captions)]

    def _compute_texts(self, video: SourceVideo, results: dict[str, Any]) -> dict[str, Any]:
        sentences = [Sentence.from_json(s) for s in results["sentences"]]
        frames = results.get("captions")
        raw: list[tuple[str, dict[str, str]]] = []
        spans: list[tuple[str, float, float]] = []
        for scale in self.config.clips.scales:
            for start, end, first, last in results["clips"][scale.name]:
                clip = Clip(start, end, first, last)
                texts = {"subtitle": clip_subtitle(sentences, clip)}
                if frames is not None:
                    texts["caption"] = join_captions(_clip_captions(frames, clip))
                raw.append((scale.name, texts))
                spans.append((scale.name, start, end))
        generator = self._lazy("generator", lambda: build_generator(self.config.summaries.backend))
        generate = None if generator is None else self._generate_memoized(generator)
        final = clip_texts(raw, self.rule, generate)
        return {"duration": results["subtitles"]["duration"],
                "clips": [{"scale": s, "start": a, "end": b, "texts": t} for (s, a, b), t in zip(spans, final)]}

    def _generate_memoized(self, generator: TextGenerator) -> Callable[[list[str]], list[str]]:
        namespace = unit_key("generate", self.config.summaries.backend.identity())

        def generate(prompts: list[str]) -> list[str]:
            def run(batch: list[str]) -> list[str]:
                return self._call("generator", lambda: generator.generate(batch))
            return self._memoized(namespace, [text_key(p) for p in prompts], prompts, run)
        return generate

    def _memoized(self, namespace: str, keys: list[str], items: list, compute: Callable[[list], list]) -> list:
        """compute(items) with each result kept in the store's memo table, committed every `memo_chunk`."""
        found = self.store.memo_get(namespace, keys)
        first: dict[str, int] = {}  # each missing key once, at its first position
        for i, key in enumerate(keys):
            if key not in found:
                first.setdefault(key, i)
        missing = list(first.values())
        chunk = max(1, self.config.run.memo_chunk)
        for start in range(0, len(missing), chunk):
            batch = missing[start:start + chunk]
            values = compute([items[i] for i in batch])
            if len(values) != len(batch):
                raise RuntimeError(f"a backend returned {len(values)} results for {len(batch)} inputs")
            fresh = {keys[i]: value for i, value in zip(batch, values)}
            self.store.memo_put(namespace, fresh)
            found.update(fresh)
        return [found[key] for key in keys]

    def _lazy(self, name: str, build: Callable[[], Any]) -> Any:
        with self._build_lock:
            if self._objects[name] is _UNBUILT:
                self._objects[name] = build()
            return self._objects[name]

    def _build_punctuator(self):
        s = self.config.sentences
        return build_punctuator(s.punctuator, s.pause_seconds, s.max_words, s.device, s.label_map)

    def _call(self, role: str, call: Callable[[], Any]) -> Any:
        lock = self._call_locks[role]
        if lock is None:
            return call()
        with lock:
            return call()

    # -- output --------------------------------------------------------------------------------------------

    def final(self, video: SourceVideo) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(texts result, None) for a finished video, (None, failure) for a failed one. A failure holds no
        attempt count or timing, so that output does not depend on how many runs it took."""
        keys = self.keys(video)
        unit = self.store.get(video.id, "texts", keys["texts"])
        if unit is not None and unit.status == "done":
            return unit.result, None
        for stage in STAGES:
            unit = self.store.get(video.id, stage, keys[stage])
            if unit is not None and unit.status == "failed":
                return None, {"id": video.id, "video": str(video.path), "stage": stage, "error": unit.error}
        return None, {"id": video.id, "video": str(video.path), "stage": None, "error": "not processed"}


_PENDING = object()
_UNBUILT = object()


def _clip_captions(frames: list[list[Any]], clip: Clip) -> list[str]:
    """The captions of the frames inside the clip; if none falls inside, the frame nearest its middle."""
    inside = [text for t, text in frames if clip.start <= t <= clip.end]
    if inside or not frames:
        return inside
    middle = (clip.start + clip.end) / 2
    return [min(frames, key=lambda frame: (abs(frame[0] - middle), frame[0]))[1]]


def run_curation(config: CurateConfig, shard: tuple[int, int] = (0, 1), stages: Sequence[str] = STAGES,
                 captioner: Captioner | None = None, generator: TextGenerator | None = None) -> RunReport:
    """Processes one shard of the input (all of it by default) and, when every video is finished or failed,
    writes the shard's manifest, failures and statistics."""
    if not config.input or not config.output:
        raise ValueError("curation needs an input (manifest or folder of videos) and an output folder")
    index, shards = shard
    videos = read_sources(config.input)
    videos = videos[shard_slice(len(videos), index, shards)]
    paths = output_paths(config.output, index, shards)
    started = time.monotonic()
    report = RunReport(videos=len(videos))
    with StateStore(config.state or paths["state"]) as store:
        curator = Curator(config, store, stages, captioner, generator)
        for status in _process_all(curator, videos, f"curate {index}/{shards}" if shards > 1 else "curate"):
            setattr(report, status, getattr(report, status) + 1)
        if report.pending == 0:
            report.stats = _write_outputs(curator, videos, paths, shard)
            report.outputs = {k: v for k, v in paths.items() if k != "state"}
    report.seconds = time.monotonic() - started
    return report


def _process_all(curator: Curator, videos: list[SourceVideo], description: str) -> Iterator[str]:
    from tqdm import tqdm

    run = curator.config.run
    with tqdm(total=len(videos), desc=description, unit="video", disable=not run.progress) as bar:
        if run.workers <= 1:
            for video in videos:
                yield _counted(bar, curator.process(video))
            return
        with ThreadPoolExecutor(max_workers=run.workers, thread_name_prefix="vidla-curate") as pool:
            for future in as_completed([pool.submit(curator.process, video) for video in videos]):
                yield _counted(bar, future.result())


def _counted(bar, status: str) -> str:
    bar.update(1)
    return status


def _write_outputs(curator: Curator, videos: list[SourceVideo], paths: dict[str, Path],
                   shard: tuple[int, int]) -> CurationStats:
    stats = CurationStats(videos=len(videos))
    failures: list[dict[str, Any]] = []
    root = paths["manifest"].parent.resolve()

    def records() -> Iterator[ClipRecord]:
        for video in videos:
            result, failure = curator.final(video)
            if failure is not None:
                failures.append(failure)
                continue
            stats.videos_done += 1
            stats.source_milliseconds += milliseconds(result["duration"])
            location = os.path.relpath(video.path, root)
            numbers: dict[str, int] = {}
            for clip in result["clips"]:
                number = numbers[clip["scale"]] = numbers.get(clip["scale"], -1) + 1
                record = ClipRecord(video=location, id=f"{video.id}#{clip['scale']}{number:03d}",
                                    start=round(clip["start"], 3), end=round(clip["end"], 3),
                                    texts=clip["texts"], extra={"scale": clip["scale"], "source_id": video.id})
                stats.add_clip(record)
                yield record

    write_manifest(paths["manifest"], records())
    stats.videos_failed = len(failures)
    _write_jsonl(paths["failures"], failures)
    extra = {"config_hash": curator.config_hash()}
    if shard[1] > 1:
        extra["shard"] = f"{shard[0]}/{shard[1]}"
    write_stats(paths["stats"], stats, extra)  # last: its presence marks the shard complete
    return stats


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_write(path) as f:
        for row in rows:
            f.write(canonical_json(row) + "\n")


def merge_shards(output: str | Path) -> CurationStats:
    """Concatenates the shards' outputs in shard order into manifest.jsonl, failures.jsonl and stats.json.

    Refuses an incomplete set (a shard whose statistics file is missing has not finished) and shards made
    with different parameters."""
    output = Path(output)
    found = sorted(output.glob("stats-*-of-*.json"))
    if not found:
        raise FileNotFoundError(f"{output}: no shard outputs (stats-*-of-*.json) to merge")
    shards = int(found[0].stem.rsplit("-of-", 1)[1])
    parts = [output_paths(output, i, shards) for i in range(shards)]
    missing = [str(p["stats"].name) for p in parts if not p["stats"].is_file()]
    if missing:
        raise FileNotFoundError(f"{output}: shards not finished (no {', '.join(missing)}); run them first")
    total = CurationStats()
    hashes = set()
    for part in parts:
        stats, raw = read_stats(part["stats"])
        total.merge(stats)
        hashes.add(raw.get("config_hash"))
    if len(hashes) > 1:
        raise ValueError(f"{output}: the shards were made with different parameters; rerun them alike")
    final = output_paths(output)
    for name in ("manifest", "failures"):
        with atomic_write(final[name]) as f:
            for part in parts:
                with part[name].open("r", encoding="utf-8") as source:
                    for line in source:
                        f.write(line)
    write_stats(final["stats"], total, {"config_hash": hashes.pop()})
    return total

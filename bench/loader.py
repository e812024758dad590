"""Data-loader throughput: training clips per second delivered per worker and in total, to size `data.workers`
against the clips/s a GPU trains at (bench/train.py).

    python bench/loader.py                            # workers 0 1 2, float and uint8 frames, 720p footage
    python bench/loader.py --workers 0 4 8 16 --batches 20 --json loader.json     # on a bigger machine

A clip is what a training step consumes, through the training path itself (ManifestClips -> SkipFailures ->
StepBatches -> DataLoader with the training collate): each clip is opened, 12 frames sampled uniformly over its window,
decoded, randomly cropped (scale 1.0 or 0.8 of 720 px), resized to 224, flipped, and its two texts tokenized.
`float` hands the model normalised float32 frames (7.2 MB a clip); `uint8` hands uint8 frames (1.8 MB) to be
normalised on the device (`data.uint8_frames=true`).

The footage is 720p H.264 (x264 veryfast, CRF 20, 25 fps, keyframe every 2 s, the synthetic panned noise of
bench/decode.py, whose generator also writes a copy with 250-frame keyframe intervals, unused here), generated
once into --footage; clips are --clip-seconds windows, overlapping by half.

Clips/s runs from asking for the first batch to receiving the last, so use a number of batches that is a
multiple of the workers and several times their count. CPU seconds per clip (this process and its workers,
user + system) do not depend on what else the machine runs, unlike clips/s: 1 / CPU s per clip is what one core
free for a worker delivers. A second table isolates what moving a batch between processes costs: the same loader
over a dataset that returns a fixed, ready tensor (no decoding), float32 against uint8.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decode import make_footage  # noqa: E402

from vidla.data.manifest import ClipRecord, write_manifest  # noqa: E402
from vidla.models.tokenizer import CLIPTokenizer  # noqa: E402
from vidla.train.clips import ManifestClips  # noqa: E402
from vidla.train.data import SkipFailures, StepBatches, make_collate  # noqa: E402

TEXT_KINDS = ("caption", "subtitle")


def write_clips(footage: list[Path], clip_seconds: float, video_seconds: float, folder: Path) -> Path:
    """A manifest of clip windows over every video, overlapping by half a window."""
    records = []
    for path in footage:
        start = 0.0
        while start + clip_seconds <= video_seconds:
            records.append(ClipRecord(video=str(path), id=f"{path.stem}_{start:g}", start=start,
                                      end=start + clip_seconds,
                                      texts={"caption": f"a clip of {path.stem} from {start:g} s",
                                             "subtitle": "and here we see the texture moving to the left"}))
            start += clip_seconds / 2
    manifest = folder / "clips.jsonl"
    write_manifest(manifest, records)
    return manifest


def make_loader(dataset: Dataset, batch: int, batches: int, workers: int, tokenizer: Any) -> DataLoader:
    """The training loop's DataLoader (vidla/train/loop.py), for `batches` steps."""
    sampler = StepBatches(len(dataset), batch, batches, seed=0)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                      collate_fn=make_collate(tokenizer, TEXT_KINDS), persistent_workers=False,
                      prefetch_factor=4 if workers > 0 else None)


def clips_per_second(loader: DataLoader) -> tuple[float, int, float]:
    """Clips/s from asking for the first batch to receiving the last (worker start-up included: it is small
    with fork and shrinks with more batches), bytes of video per clip, and CPU seconds per clip spent by this
    process and its workers (user + system; the workers are counted once they have exited, at the end)."""
    before = _cpu_seconds()
    started, clips = time.perf_counter(), 0
    iterator = iter(loader)
    for item in iterator:
        clips += item["video"].shape[0]
        size = item["video"][0].numel() * item["video"].element_size()
    elapsed = time.perf_counter() - started
    del iterator  # joins the workers, so that their CPU time is counted
    return clips / elapsed, size, (_cpu_seconds() - before) / clips


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class ReadyClips(Dataset):
    """Clips that cost nothing to make: what remains is the transfer between processes."""

    def __init__(self, num_clips: int, frames: int, size: int, dtype: torch.dtype):
        self.num_clips = num_clips
        self.video = torch.zeros(frames, 3, size, size, dtype=dtype)

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, key: int) -> dict[str, Any]:
        return {"video": self.video.clone(), "texts": {k: "a text" for k in TEXT_KINDS}, "key": key}


def stage_times(dataset: ManifestClips, clips: int) -> dict[str, float]:
    """Seconds per clip in one process: sample + decode, then crop/resize/flip(/normalise)."""
    from vidla.data.video import read_clip

    loader, root = dataset.clips.loader, dataset.clips.root
    decode = transform = 0.0
    for index in range(clips):
        record = dataset.clips.clips[index % len(dataset)]
        started = time.perf_counter()
        clip = read_clip(record.resolve(root), loader.num_frames, loader.sampling, record.start, record.end,
                         train=True)
        decoded = time.perf_counter()
        loader.transform(clip.frames)
        transform += time.perf_counter() - decoded
        decode += decoded - started
    return {"decode_s": decode / clips, "transform_s": transform / clips}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--batches", type=int, default=12, help="batches per setting")
    parser.add_argument("--formats", nargs="+", choices=["float", "uint8"], default=["float", "uint8"])
    parser.add_argument("--seconds", type=int, default=24, help="length of each generated 720p video")
    parser.add_argument("--clip-seconds", type=float, default=8.0)
    parser.add_argument("--footage", type=Path, default=Path(tempfile.gettempdir()) / "vidla-bench-footage")
    parser.add_argument("--ipc-batches", type=int, default=30, help="batches for the transfer-only table (0: skip)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()

    torch.set_num_threads(1)  # as in a worker: the main process of workers=0 gets one thread too
    footage = list(make_footage(args.footage, args.seconds, 1280, 720, 25).values())[:1]
    manifest = write_clips(footage, args.clip_seconds, args.seconds, args.footage)
    tokenizer = CLIPTokenizer.default(77)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# loader benchmark: {platform.machine()}, {cores} cores, torch {torch.__version__}; "
          f"{args.frames} frames of 1280x720 H.264 -> {args.image_size}, batch {args.batch}, "
          f"{args.batches} batches a setting\n")
    rows: list[dict[str, Any]] = []
    datasets = {fmt: ManifestClips(str(manifest), TEXT_KINDS, args.frames, args.image_size, "uniform",
                                   augment=True, uint8_frames=fmt == "uint8") for fmt in args.formats}
    stages = stage_times(datasets[args.formats[0]], 4)
    print(f"one process, seconds per clip: sample + decode {stages['decode_s']:.3f}, "
          f"crop/resize/flip/normalise {stages['transform_s']:.3f}\n")
    print("| frames | workers | clips/s total | clips/s per worker | CPU s per clip | clips/s per free core "
          "| MB per clip |")
    print("|---|---|---|---|---|---|---|")
    for fmt in args.formats:
        for workers in args.workers:
            loader = make_loader(SkipFailures(datasets[fmt]), args.batch, args.batches, workers, tokenizer)
            rate, size, cpu = clips_per_second(loader)
            rows.append(dict(table="clips", frames=fmt, workers=workers, clips_per_s=rate, bytes_per_clip=size,
                             cpu_s_per_clip=cpu))
            per_worker = rate / max(workers, 1)
            print(f"| {fmt} | {workers} | {rate:.2f} | {per_worker:.2f} | {cpu:.3f} | {1 / cpu:.2f} | "
                  f"{size / 1e6:.1f} |", flush=True)
    if args.ipc_batches:
        print("\ntransfer only (a ready tensor per clip, no decoding): what the workers' batches cost to move")
        print("| frames | workers | clips/s | ms per clip | CPU ms per clip |")
        print("|---|---|---|---|---|")
        for fmt, dtype in (("float", torch.float32), ("uint8", torch.uint8)):
            for workers in [w for w in args.workers if w > 0]:
                ready = ReadyClips(args.batch * args.ipc_batches, args.frames, args.image_size, dtype)
                runs = [clips_per_second(make_loader(ready, args.batch, args.ipc_batches, workers, tokenizer))
                        for _ in range(3)]
                rate, cpu = statistics.median(r[0] for r in runs), statistics.median(r[2] for r in runs)
                rows.append(dict(table="transfer", frames=fmt, workers=workers, clips_per_s=rate, cpu_s_per_clip=cpu))
                print(f"| {fmt} | {workers} | {rate:.0f} | {1000 / rate:.2f} | {1000 * cpu:.2f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": f"{platform.machine()}, {cores} cores", "stages": stages, "rows": rows}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

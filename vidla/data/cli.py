"""`vidla data ...`: inspect videos, check benchmark folders, build clip indexes and shards.

    vidla data probe clip.mp4 other.mkv             # header, rotation, frame rate, keyframes
    vidla data frames clip.mp4 out/ -n 8             # the frames load_video would return, as PNG files
    vidla data check msrvtt /data/msrvtt            # annotation files, missing and unreadable videos
    vidla data verify clips.jsonl --level decode    # the same for a manifest
    vidla data index clips.jsonl clips.sqlite       # SQLite clip index for millions of clips
    vidla data shards clips.jsonl shards/ --max-count 1000
    vidla data benchmarks                           # the benchmarks, their splits and files
    vidla data multiclip activitynet mc.jsonl --root /data/activitynet   # LF-VILA's multi-clip samples
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vidla.errors import VidlaError


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="videos, datasets and benchmark files (docs/data.md)",
                                 description="Video input tools: probe and sample videos, check benchmark "
                                             "folders, build clip indexes and WebDataset shards.")
    commands = data.add_subparsers(dest="data_command", metavar="TOOL")
    data.set_defaults(func=lambda args: _print_help(data))

    probe = commands.add_parser("probe", help="header information of videos (or frame folders)")
    probe.add_argument("videos", nargs="+")
    probe.add_argument("--json", action="store_true", help="one JSON object per line")
    probe.add_argument("--frame-rate", type=float, help="of frame folders (default: 1 fps assumed)")
    probe.set_defaults(func=_probe)

    frames = commands.add_parser("frames", help="write the frames load_video returns as PNG files")
    frames.add_argument("video")
    frames.add_argument("out", help="output folder")
    frames.add_argument("-n", "--num-frames", type=int, default=8)
    frames.add_argument("--sampling", default="uniform", help="uniform, random, dense or fps")
    frames.add_argument("--start", type=float)
    frames.add_argument("--end", type=float)
    frames.add_argument("--fps", type=float, help="for --sampling fps")
    frames.add_argument("--frame-rate", type=float, help="of a frame folder")
    frames.set_defaults(func=_frames)

    check = commands.add_parser("check", help="report a benchmark's missing or unreadable files",
                                description="Reads the benchmark's annotation files under ROOT, then checks each "
                                            "video: present (exists), opens (header) or decodes its first and "
                                            "last frames (decode). Exit status 1 when anything is wrong.")
    check.add_argument("name", help="msrvtt, didemo, activitynet, msvd, vatex, kinetics400 or ssv2")
    check.add_argument("root", help="the dataset's folder (layouts: docs/datasets.md)")
    check.add_argument("--split", action="append", help="a split to check (repeatable; default all)")
    _add_check_options(check)
    check.set_defaults(func=_check)

    verify = commands.add_parser("verify", help="report a manifest's missing or unreadable videos")
    verify.add_argument("manifest", help=".jsonl manifest or .sqlite clip index")
    verify.add_argument("--root", help="where relative video paths resolve (default: the manifest's folder)")
    _add_check_options(verify)
    verify.set_defaults(func=_verify)

    index = commands.add_parser("index", help="build a SQLite clip index from a JSONL manifest")
    index.add_argument("manifest")
    index.add_argument("out", help="the .sqlite file to write")
    index.add_argument("--root", help="where relative video paths resolve (default: the manifest's folder)")
    index.set_defaults(func=_index)

    shards = commands.add_parser("shards", help="pack a manifest's clips into WebDataset tar shards")
    shards.add_argument("manifest", help=".jsonl manifest or .sqlite clip index")
    shards.add_argument("out", help="output folder")
    shards.add_argument("--root", help="where relative video paths resolve (default: the manifest's folder)")
    shards.add_argument("--max-count", type=int, default=1000, help="clips per shard (default 1000)")
    shards.add_argument("--max-size-mb", type=float, default=1024, help="shard size limit (default 1024 MB)")
    shards.add_argument("--prefix", default="shard")
    shards.set_defaults(func=_shards)

    listing = commands.add_parser("benchmarks", help="the benchmark readers, their splits and annotation files")
    listing.set_defaults(func=_benchmarks)

    synth = commands.add_parser("synth", help="write the synthetic temporal benchmark (twin clips, mp4 + manifests)",
                                description="Clips of coloured-shape events whose twins hold the same events in "
                                            "another order (vidla.data.temporal_synth); writes OUT_DIR/videos, "
                                            "train.jsonl and test.jsonl for `vidla train` (data.group_size=2 keeps "
                                            "twins in one batch) and `vidla eval --benchmark manifest`.")
    synth.add_argument("out_dir")
    synth.add_argument("--num-clips", type=int, default=800)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--test-fraction", type=float, default=0.2)
    synth.add_argument("--size", type=int, default=64, help="frame width and height in pixels")
    synth.add_argument("--fps", type=int, default=8)
    synth.add_argument("--frames-per-event", type=int, default=8)
    synth.add_argument("--idle-frames", type=int, default=0,
                       help="> 0: each event is a brief moment inside a slot of this many more frames of empty "
                            "background (where key-frame selection matters)")
    synth.add_argument("--distractors", type=int, default=0,
                       help="> 0: this many more events per clip that neither caption nor subtitle names (where "
                            "text-guided key-frame selection can matter)")
    synth.set_defaults(func=_synth)

    multiclip = commands.add_parser(
        "multiclip", help="write multi-clip samples (M consecutive timed sentences) for LF-VILA's MTC loss",
        description="Cuts sentence-timed videos into windows of M consecutive clips, each with its sentence "
                    "(vidla.data.multiclip; docs/training.md). Sources: a benchmark (activitynet or didemo, "
                    "with --root and --split), a curated manifest (`vidla curate` output) or a manifest whose "
                    "records list timed `segments` (`vidla data synth` writes them).")
    multiclip.add_argument("source", help="activitynet, didemo, or a .jsonl manifest")
    multiclip.add_argument("out", help="the multi-clip manifest to write (.jsonl)")
    multiclip.add_argument("--root", help="the benchmark's folder (for activitynet/didemo)")
    multiclip.add_argument("--split", help="the benchmark's split (default: train)", default="train")
    multiclip.add_argument("--clips", type=int, default=4, help="clips per sample (LF-VILA: 4)")
    multiclip.add_argument("--text-kind", default="caption", help="a curated clip's text to use as its sentence")
    multiclip.set_defaults(func=_multiclip)


def _multiclip(args: argparse.Namespace) -> int:
    from vidla.data import multiclip
    from vidla.data.manifest import read_manifest_resolved, write_manifest

    if args.source in ("activitynet", "didemo"):
        if not args.root:
            raise VidlaError(f"{args.source}: pass --root, the benchmark's folder")
        from vidla.data import load_benchmark

        split = load_benchmark(args.source, args.root, args.split)
        sources, samples = len(split.videos), multiclip.from_benchmark(split, args.clips)
    else:
        records = read_manifest_resolved(args.source)
        sources = len(records)
        curated = records and "source_id" in records[0].extra and "segments" not in records[0].extra
        samples = multiclip.from_curation(records, args.clips, args.text_kind) if curated \
            else multiclip.from_segments(records, args.clips)
    write_manifest(args.out, samples)
    used = len({s.extra["source_id"] for s in samples})
    print(f"{args.out}: {len(samples)} samples of {args.clips} clips from {used} of {sources} sources "
          f"({sources - used} with fewer than {args.clips} timed sentences)")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from vidla.data.temporal_synth import generate

    paths = generate(args.out_dir, num_clips=args.num_clips, seed=args.seed, test_fraction=args.test_fraction,
                     size=args.size, fps=args.fps, frames_per_event=args.frames_per_event,
                     idle_frames=args.idle_frames, distractors=args.distractors)
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


def _add_check_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--level", choices=("exists", "header", "decode"), default="header",
                        help="how far to check each video (default header)")
    parser.add_argument("--workers", type=int, help="parallel checks (default 2 x cores)")
    parser.add_argument("--json", help="also write the report to this JSON file")
    parser.add_argument("--show", type=int, default=10, help="problems listed per split (default 10)")


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _progress_bar(total: int | None, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="video", disable=not sys.stderr.isatty())


def _probe(args: argparse.Namespace) -> int:
    from vidla.data.decode import VideoDecodeError, probe_video

    status = 0
    for path in args.videos:
        try:
            info = probe_video(path, frame_rate=args.frame_rate)
        except VideoDecodeError as e:
            print(f"{path}: ERROR {e.reason}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            print(json.dumps(info.to_json()))
        else:
            rate = f"{info.frame_rate:.3f} fps" if info.frame_rate else "unknown rate"
            if info.container == "folder" and args.frame_rate is None:
                rate = "1 fps assumed (pass --frame-rate)"
            frames = f", {info.num_frames} frames" if info.num_frames else ""
            rotation = f", rotated {info.rotation} deg" if info.rotation else ""
            print(f"{path}: {info.codec} in {info.container}, {info.width}x{info.height}, {info.duration:.3f} s, "
                  f"{rate}{frames}{rotation}")
    return status


def _frames(args: argparse.Namespace) -> int:
    from vidla.data.video import read_clip

    clip = read_clip(args.video, args.num_frames, args.sampling, args.start, args.end, fps=args.fps,
                     frame_rate=args.frame_rate)
    out = Path(args.out)
    for position, (frame, time) in enumerate(zip(clip.frames, clip.timestamps.tolist())):
        path = out / f"frame_{position:03d}_{time:09.3f}s.png"
        _write_png(path, frame.numpy())
        print(path)
    return 0


def _write_png(path: Path, rgb) -> None:
    import av

    from vidla.io import atomic_write

    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    packets = codec.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")) + codec.encode(None)
    with atomic_write(path, "wb") as f:
        for packet in packets:
            f.write(bytes(packet))


def _report(reports: list, args: argparse.Namespace, label: str) -> int:
    status = 0
    for report in reports:
        if report.annotation_error is not None:
            print(f"{label} {report.split}: ANNOTATIONS MISSING: {report.annotation_error}")
            status = max(status, 1)
            continue
        print(f"{report.summary}; {len(report.unreadable)} unreadable" if report.summary else label)
        for clip_id in report.missing[:args.show]:
            print(f"  missing: {clip_id}")
        if len(report.missing) > args.show:
            print(f"  ... and {len(report.missing) - args.show} more missing")
        for path, reason in list(report.unreadable.items())[:args.show]:
            print(f"  unreadable: {path}: {reason}")
        if len(report.unreadable) > args.show:
            print(f"  ... and {len(report.unreadable) - args.show} more unreadable")
        status = max(status, 0 if report.ok else 1)
    if args.json:
        from vidla.io import atomic_write

        with atomic_write(args.json) as f:
            json.dump([_report_json(r) for r in reports], f, indent=1)
    return status


def _report_json(report: Any) -> dict[str, Any]:
    return {"split": report.split, "summary": report.summary, "annotation_error": report.annotation_error,
            "missing": report.missing, "unreadable": report.unreadable, "ok": report.ok}


def _check(args: argparse.Namespace) -> int:
    from vidla.data.check import check_benchmark

    root = Path(args.root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    with _progress_bar(None, f"checking {args.name}") as bar:
        reports = check_benchmark(args.name, root, args.split, args.level, args.workers, bar.update)
    return _report(reports, args, args.name)


def _verify(args: argparse.Namespace) -> int:
    from vidla.data.check import SplitReport, check_videos, check_windows
    from vidla.data.datasets import VideoTextDataset

    dataset = VideoTextDataset(args.manifest, root=args.root)  # a bad manifest: an error naming file, line, field
    paths = {record.resolve(dataset.root): record.id or str(i) for i, record in enumerate(dataset.clips)}
    report = SplitReport(Path(args.manifest).name, summary=f"{args.manifest}: {len(paths)} clips")
    report.missing = [f"{clip_id} ({path})" for path, clip_id in paths.items() if not path.exists()]
    if args.level != "exists":
        with _progress_bar(len(paths), "checking videos") as bar:
            report.unreadable = check_videos([p for p in paths if p.exists()], args.level, args.workers, bar.update)
        clips = ((f"clip {record.id or i}", record.resolve(dataset.root), record.start)
                 for i, record in enumerate(dataset.clips) if record.resolve(dataset.root).exists())
        report.unreadable.update(check_windows(clips, skip=report.unreadable))
    return _report([report], args, args.manifest)


def _index(args: argparse.Namespace) -> int:
    from vidla.data.index import build_clip_index

    index = build_clip_index(args.manifest, args.out, root=args.root)
    print(f"{args.out}: {len(index)} clips (videos resolve against {index.root})")
    return 0


def _shards(args: argparse.Namespace) -> int:
    from vidla.data.shards import SHARD_LIST, write_shards

    paths = write_shards(args.manifest, args.out, args.root, max_count=args.max_count,
                         max_size=int(args.max_size_mb * 2**20), prefix=args.prefix)
    listing = json.loads((Path(args.out) / SHARD_LIST).read_text(encoding="utf-8"))
    print(f"{args.out}: {len(paths)} shards, {listing['total']} clips ({listing['missing']} missing videos left out)")
    return 0


def _benchmarks(args: argparse.Namespace) -> int:
    from vidla.data.benchmarks import DEFAULT_SPLITS, benchmark_files, list_benchmarks

    for name in list_benchmarks():
        print(f"{name} (default split {DEFAULT_SPLITS[name]})")
        for split, files in benchmark_files(name).items():
            print(f"  {split}: {', '.join(files)}")
    return 0

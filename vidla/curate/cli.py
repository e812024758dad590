"""`vidla curate ...`: run the curation pipeline (or some of its stages, or one shard), merge shards, report.

    vidla curate run --input videos/ --output curated/ --captioner openai --captioner-model M \\
        --captioner-url http://127.0.0.1:8000/v1 --summarizer openai --summarizer-model L ...
    vidla curate run --config configs/curate/yt_vidla.yaml --shard 3/8
    vidla curate merge curated/
    vidla curate stats curated/manifest.jsonl
    vidla curate status curated/
    vidla curate export curated/manifest.jsonl --output shards/
    vidla curate inspect video.en.vtt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

_BACKEND_FLAGS = ("captioner", "summarizer")


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    curate = subparsers.add_parser("curate", help="build training data from videos with subtitles (SPEC 3)",
                                   description="Data curation: subtitles -> sentences -> multi-scale clips -> "
                                               "frame captions -> summaries -> manifest (docs/curation.md).")
    commands = curate.add_subparsers(dest="curate_command", metavar="STEP")
    curate.set_defaults(func=lambda args: _print_help(curate))
    _add_run(commands)
    merge = commands.add_parser("merge", help="merge the outputs of finished shards into manifest.jsonl")
    merge.add_argument("output", help="the output folder the shards wrote to")
    merge.set_defaults(func=_merge)
    stats = commands.add_parser("stats", help="Table-1-like statistics of a curated manifest")
    stats.add_argument("manifest")
    stats.add_argument("--json", help="also write the statistics to this JSON file")
    stats.set_defaults(func=_stats)
    status = commands.add_parser("status", help="what the state store holds: units per stage, failures")
    status.add_argument("store", help="a state .sqlite file, or the output folder (all its state*.sqlite)")
    status.add_argument("--failures", type=int, default=20, help="failures to list (default 20)")
    status.set_defaults(func=_status)
    export = commands.add_parser("export", help="write a curated manifest's clips as WebDataset tar shards")
    export.add_argument("manifest")
    export.add_argument("--output", required=True, help="folder for shard-000000.tar, ...")
    export.add_argument("--clips-per-shard", type=int, default=1000)
    export.add_argument("--max-side", type=int, help="scale clips down to this longer side")
    export.add_argument("--no-progress", action="store_true")
    export.set_defaults(func=_export)
    inspect = commands.add_parser("inspect", help="show the sentences and clips made from one subtitle file")
    inspect.add_argument("subtitles", help=".srt, .vtt or .json3 file, or a video with a subtitle stream")
    inspect.add_argument("--punctuator", default="auto")
    inspect.add_argument("--pause-seconds", type=float, default=0.6)
    inspect.set_defaults(func=_inspect)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the pipeline (all stages, or --stages), on all or one --shard",
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              description="Runs the stages for every video of the input (or of one shard); "
                                          "finished units are skipped. Captioner and summarizer have no "
                                          "default: name them (or 'none').")
    run.add_argument("--config", help="YAML recipe (configs/curate/); flags override it")
    run.add_argument("--input", help="JSONL manifest of source videos, or a folder of videos")
    run.add_argument("--output", help="output folder")
    run.add_argument("--state", help="state store path (default OUTPUT/state[-i-of-N].sqlite)")
    run.add_argument("--shard", default="0/1", help="i/N: process the i-th of N slices (0-based)")
    run.add_argument("--stages", help="comma-separated subset of subtitles,sentences,clips,captions,texts")
    run.add_argument("--punctuator", help="auto (default), pauses, or hf:<token-classification model>")
    run.add_argument("--fps", type=float, help="frames captioned per second (default 0.1)")
    for role in _BACKEND_FLAGS:
        run.add_argument(f"--{role}", dest=f"{role}_kind", choices=["hf", "openai", "python", "none"],
                         help=f"{role} backend (required unless the config names one)")
        run.add_argument(f"--{role}-model", help="HF name/path, served model name, or module:factory")
        run.add_argument(f"--{role}-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    run.add_argument("--captioner-prompt", help="instruction sent with each frame")
    run.add_argument("--device", help="device of local (hf) models, e.g. cuda")
    run.add_argument("--concurrency", type=int, help="requests in flight per HTTP backend (default 8)")
    run.add_argument("--workers", type=int, help="videos in flight (default 1)")
    run.add_argument("--no-retry-failed", action="store_true", help="do not retry units that failed before")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override any config key, e.g. --set clips.max_gap=5 (repeatable)")
    run.set_defaults(func=_run)


def _flags_to_config(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that were given, as a nested config dict."""
    base: dict[str, Any] = {}

    def put(path: str, value: Any) -> None:
        if value is None:
            return
        node = base
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    put("input", args.input)
    put("output", args.output)
    put("state", args.state)
    put("sentences.punctuator", args.punctuator)
    put("captions.fps", args.fps)
    put("run.workers", args.workers)
    if args.no_retry_failed:
        put("run.retry_failed", False)
    if args.no_progress:
        put("run.progress", False)
    for role, section in (("captioner", "captions"), ("summarizer", "summaries")):
        put(f"{section}.backend.kind", getattr(args, f"{role}_kind"))
        put(f"{section}.backend.model", getattr(args, f"{role}_model"))
        put(f"{section}.backend.endpoint.base_url", getattr(args, f"{role}_url"))
        put(f"{section}.backend.device", args.device)
        put(f"{section}.backend.endpoint.max_concurrency", args.concurrency)
    put("captions.backend.prompt", args.captioner_prompt)
    return base


def _run(args: argparse.Namespace) -> int:
    from vidla.curate.config import STAGES, load_config
    from vidla.curate.pipeline import parse_shard, run_curation

    config = load_config(args.config, args.set, _flags_to_config(args))
    stages = [s.strip() for s in args.stages.split(",")] if args.stages else list(STAGES)
    report = run_curation(config, parse_shard(args.shard), stages)
    print(f"{report.videos} videos: {report.done} done, {report.failed} failed, {report.pending} waiting for "
          f"stages not run; {report.seconds:.1f} s")
    if report.stats is not None:
        print(report.stats.table())
        for name, path in report.outputs.items():
            print(f"{name}: {path}")
        if report.failed:
            print(f"{report.failed} video(s) failed; their errors are in {report.outputs['failures']}; "
                  "a rerun retries them")
    elif report.pending:
        print("no manifest written: run the remaining stages (same --output/--state) to finish")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from vidla.curate.pipeline import merge_shards, output_paths

    stats = merge_shards(args.output)
    print(stats.table())
    for name, path in output_paths(args.output).items():
        if name != "state":
            print(f"{name}: {path}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from vidla.curate.stats import manifest_stats, write_stats

    stats = manifest_stats(args.manifest)
    print(stats.table())
    if args.json:
        write_stats(args.json, stats)
    return 0


def _status(args: argparse.Namespace) -> int:
    from vidla.curate.state import StateStore

    target = Path(args.store)
    stores = sorted(target.glob("state*.sqlite")) if target.is_dir() else [target]
    if not stores or not all(p.is_file() for p in stores):
        raise FileNotFoundError(f"no state store at {target}")
    for path in stores:
        with StateStore(path) as store:
            print(f"{path}:")
            for stage, status, count in store.counts():
                print(f"  {stage:<10} {status:<7} {count}")
            failures = store.failures()
            for video, stage, error, attempts in failures[: args.failures]:
                print(f"  failed: {video} [{stage}, {attempts} attempt(s)] {error}")
            if len(failures) > args.failures:
                print(f"  ... and {len(failures) - args.failures} more")
    return 0


def _export(args: argparse.Namespace) -> int:
    from vidla.curate.export import export_webdataset

    shards = export_webdataset(args.manifest, args.output, args.clips_per_shard, args.max_side,
                               progress=not args.no_progress)
    print(f"{len(shards)} shard(s) in {args.output}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from vidla.curate.clipping import DEFAULT_SCALES, clip_subtitle, cut_clips
    from vidla.curate.sentences import build_punctuator, sentences_from_segments
    from vidla.curate.subtitles import SUBTITLE_EXTENSIONS, read_embedded, read_subtitle_file

    path = Path(args.subtitles)
    segments = (read_subtitle_file(path) if path.suffix.lower() in SUBTITLE_EXTENSIONS
                else read_embedded(path)[0])
    sentences = sentences_from_segments(segments, build_punctuator(args.punctuator, args.pause_seconds))
    print(f"{len(segments)} subtitle segments, {len(sentences)} sentences")
    for sentence in sentences:
        print(f"  [{sentence.start:8.2f} {sentence.end:8.2f}] {sentence.text}")
    for scale in DEFAULT_SCALES:
        clips = cut_clips(sentences, scale)
        print(f"{scale.name}: {len(clips)} clips")
        for clip in clips:
            print(json.dumps({"start": round(clip.start, 2), "end": round(clip.end, 2),
                              "subtitle": clip_subtitle(sentences, clip)}, ensure_ascii=False))
    return 0

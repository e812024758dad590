"""`vidla eval`: score a checkpoint on a benchmark with the paper's protocol, and write the report.

    vidla eval --benchmark msrvtt --data-root /data/msrvtt --checkpoint ViT-B-32.pt --dsl --output runs/msrvtt
    vidla eval --list
    vidla eval --config configs/eval/kinetics400_zeroshot.yaml --data-root /data/k400 --checkpoint ckpt.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vidla.evaluate.run import EvalOptions

_HELP = {
    "benchmark": "msrvtt, didemo, activitynet, msvd, vatex, msrvtt-mc, kinetics400, ssv2 (see --list)",
    "data_root": "the benchmark's folder (annotations and videos; layouts in docs/datasets.md)",
    "checkpoint": "vidla checkpoint, OpenAI/open_clip CLIP file, Hugging Face CLIP folder or hub id",
    "split": "another split of the benchmark (default: the paper's evaluation split)",
    "frames": "frames per clip (default: the protocol's, 32; the manifest benchmark: the checkpoint's)",
    "sampling": "frame sampling: uniform (default), dense, random, fps",
    "temporal_views": "temporal test views per video (their embeddings are averaged)",
    "spatial_views": "1 (centre crop) or 3 (three crops along the longer side)",
    "frame_rate": "frames per second of frame-folder datasets",
    "temporal": "temporal design to evaluate with instead of the checkpoint's (meanpool, hta, ...)",
    "templates": "zero-shot prompt templates: kinetics (CLIP's 28) or none (the class name alone)",
    "dsl": "also report dual-softmax figures (beside the plain ones, never instead)",
    "allow_missing": "drop videos whose files are missing instead of stopping (reported in the results)",
    "output": "output folder (default runs/eval/<benchmark>-<split>)",
    "cache_dir": "embedding cache folder (default $VIDLA_CACHE_DIR or ~/.cache/vidla/embeddings)",
    "cache": "read and write the embedding cache (--no-cache: neither)",
    "batch_size": "videos per batch",
    "text_batch_size": "texts per batch",
    "workers": "decoding workers (default: one per core, at most 8)",
    "device": "cuda, cpu, ... (default: cuda when available)",
    "precision": "fp32 (default), bf16 or fp16 autocast",
    "chunk_size": "similarity rows scored at once (bounds memory on 10k x 10k)",
    "duration_bins": "duration bin edges in seconds, e.g. 10,20,30 (default: 5 bins of similar counts)",
    "num_duration_bins": "number of quantile duration bins when --duration-bins is not given",
    "progress": "show progress bars (--no-progress to hide)",
    "decode_size": "shorter side frames are decoded to: auto (default; twice the model's input size, the pixels "
                   "training's loader gives), full (the source's size) or pixels",
    "threads": "CPU threads of this process (torch.set_num_threads); one per process is fastest on a busy machine",
}
_CHOICES = {"precision": ["fp32", "bf16", "fp16"], "spatial_views": [1, 3], "templates": ["kinetics", "none"]}


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    from vidla.evaluate.run import EvalOptions

    parser = subparsers.add_parser("eval", help="evaluate a checkpoint on a retrieval/classification benchmark",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file of options (configs/eval/); flags given here override it")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their protocols, then exit")
    for f in dataclasses.fields(EvalOptions):
        _add_option(parser, f)
    parser.set_defaults(func=run_eval)


def _add_option(parser: argparse.ArgumentParser, f: dataclasses.Field) -> None:
    """One flag per EvalOptions field; defaults are None so that a config file's values show through."""
    flag = "--" + f.name.replace("_", "-")
    if f.type in ("bool", bool):
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=_HELP.get(f.name))
        return
    kind = {"int": int, "float": float}.get(str(f.type).split(" |")[0], str)
    parser.add_argument(flag, type=kind, default=None, choices=_CHOICES.get(f.name), help=_HELP.get(f.name))


def options_from_args(args: argparse.Namespace) -> EvalOptions:
    from vidla.config import from_dict, load_yaml
    from vidla.evaluate.run import EvalOptions

    values = load_yaml(args.config) if args.config else {}
    for f in dataclasses.fields(EvalOptions):
        if getattr(args, f.name, None) is not None:
            values[f.name] = getattr(args, f.name)
    return from_dict(EvalOptions, values, where="eval options: ")


def print_protocols() -> None:
    from vidla.evaluate.protocols import list_protocols

    for p in list_protocols():
        print(f"{p.name:<12} {p.task:<25} split {p.split:<8} {p.sampling.describe()}")
        print(f"{'':<12} {p.queries}")
        if p.reference:
            print(f"{'':<12} paper: {p.reference}")


def run_eval(args: argparse.Namespace) -> int:
    from vidla.evaluate.report import markdown_report
    from vidla.evaluate.run import run_benchmark

    if args.list:
        print_protocols()
        return 0
    results = run_benchmark(options_from_args(args))
    print(markdown_report(results))
    print(f"wrote {', '.join(results['outputs'].values())} to {results['output_dir']}")
    return 0

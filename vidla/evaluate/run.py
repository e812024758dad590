"""One evaluation run, as `vidla eval` does it: read the benchmark, load the model, embed, score, report.

    from vidla.evaluate import EvalOptions, run_benchmark
    results = run_benchmark(EvalOptions(benchmark="msrvtt", data_root="/data/msrvtt", checkpoint="ckpt.safetensors",
                                        dsl=True, output="runs/eval/msrvtt"))
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidla.data.benchmarks import load_benchmark
from vidla.data.benchmarks.base import BenchmarkSplit
from vidla.data.transforms import resolve_decode_size
from vidla.evaluate.cache import EmbeddingCache, default_cache_dir
from vidla.evaluate.embed import ClipSampling, Embedder
from vidla.evaluate.protocols import DSL_RULE, TIE_RULE, EvalProtocol, get_protocol
from vidla.evaluate.report import by_duration, duration_edges, parse_edges, write_report
from vidla.evaluate.tasks import (
    EvalResult,
    drop_missing,
    evaluate_multiple_choice,
    evaluate_retrieval,
    evaluate_zero_shot,
)
from vidla.evaluate.zeroshot import TEMPLATE_SETS

log = logging.getLogger(__name__)
_PREPROCESSING = ("shorter side resized to {size} px (antialiased bicubic), centre crop {size} x {size} "
                  "(three crops along the longer side for 3 spatial views), CLIP mean/std")


@dataclass
class EvalOptions:
    """Everything `vidla eval` takes; None means the benchmark protocol's default."""

    benchmark: str = "msrvtt"
    data_root: str = "."
    checkpoint: str = ""
    split: str | None = None
    frames: int | None = None
    sampling: str | None = None
    temporal_views: int | None = None
    spatial_views: int | None = None
    frame_rate: float | None = None  # of frame-folder datasets
    temporal: str | None = None  # override the checkpoint's temporal design
    templates: str | None = None  # zero-shot classification: "kinetics" or "none"
    dsl: bool = False
    allow_missing: bool = False
    output: str | None = None  # default runs/eval/<benchmark>-<split>
    cache_dir: str | None = None
    cache: bool = True  # read and write the embedding cache
    batch_size: int = 8
    text_batch_size: int = 256
    workers: int | None = None
    device: str | None = None
    precision: str = "fp32"
    chunk_size: int = 1024
    duration_bins: str | None = None  # "10,20,30" (seconds); default: 5 quantile bins
    num_duration_bins: int = 5
    progress: bool = True
    threads: int | None = None  # CPU threads of this process (torch.set_num_threads); None: torch's default
    # Shorter side frames are decoded to: "auto" = twice the model's input size (vidla.data.transforms.decode_size),
    # the pixels training's loader gives; "full" = the source's size; or pixels.
    decode_size: str | int = "auto"


def resolve_sampling(protocol: EvalProtocol, options: EvalOptions) -> ClipSampling:
    overrides = {"num_frames": options.frames, "method": options.sampling, "temporal_views": options.temporal_views,
                 "spatial_views": options.spatial_views, "frame_rate": options.frame_rate,
                 "decode_size": options.decode_size}
    return replace(protocol.sampling, **{k: v for k, v in overrides.items() if v is not None})


def load_split(protocol: EvalProtocol, options: EvalOptions) -> tuple[BenchmarkSplit, int]:
    """The split, and how many videos were dropped because their files are missing (only with allow_missing)."""
    split = load_benchmark(protocol.benchmark, options.data_root, protocol.split)
    if not split.missing:
        return split, 0
    if not options.allow_missing:
        shown = ", ".join(split.missing[:5]) + (" ..." if len(split.missing) > 5 else "")
        raise FileNotFoundError(f"{split.summary()}: no file for {shown} under {options.data_root}. Scoring without "
                                "them changes the protocol; pass --allow-missing to drop them (reported in the "
                                "results)")
    dropped = len(split.missing)
    log.warning("%s: dropping %d videos whose files are missing", split.summary(), dropped)
    return drop_missing(split), dropped


def texts_per_video(split: BenchmarkSplit) -> str:
    counts = np.bincount(np.asarray(split.text_to_video, dtype=np.int64), minlength=len(split.videos))
    if counts.min() == counts.max():
        return str(int(counts.min()))
    return f"{int(counts.min())}-{int(counts.max())} (mean {counts.mean():.2f})"


def describe_protocol(protocol: EvalProtocol, split: BenchmarkSplit, sampling: ClipSampling, options: EvalOptions,
                      image_size: int, dropped: int) -> dict[str, Any]:
    retrieval = split.task == "retrieval"
    return {
        "benchmark": protocol.benchmark, "split": split.split, "task": _task_name(split), "queries": protocol.queries,
        "videos": len(split.videos), "texts": len(split.texts) if split.texts else None,
        "texts_per_video": texts_per_video(split) if split.texts else None,
        "classes": len(split.class_names) or None,
        "dsl": (("reported beside the plain figures: " + DSL_RULE) if options.dsl else "off") if retrieval else None,
        "tie_rule": TIE_RULE if retrieval else "pessimistic: a tie with a wrong answer counts as wrong",
        "frames": sampling.num_frames, "sampling": sampling.describe(),
        "preprocessing": _PREPROCESSING.format(size=image_size), "decoding": _decoding(sampling, image_size),
        "precision": options.precision,
        "templates": _templates_name(protocol, options) if split.task == "classification" else None,
        "missing_videos": f"{dropped} dropped (--allow-missing)" if dropped else "none",
        "reference": protocol.reference, "notes": "; ".join(protocol.notes) or None,
    }


def _decoding(sampling: ClipSampling, image_size: int) -> str:
    resize_to = resolve_decode_size(sampling.decode_size, image_size)
    if resize_to is None:
        return "frames at the source's size"
    return (f"shorter side scaled to {resize_to} px inside the decoder (bicubic; never up), as training's loader "
            "decodes")


def _task_name(split: BenchmarkSplit) -> str:
    return "zero_shot_classification" if split.task == "classification" else split.task


def _templates_name(protocol: EvalProtocol, options: EvalOptions) -> str:
    name = options.templates or protocol.templates or "kinetics"
    if name not in TEMPLATE_SETS:
        raise ValueError(f"unknown prompt templates {name!r}; choose one of {', '.join(TEMPLATE_SETS)}")
    return name


def evaluate_split(embedder: Embedder, split: BenchmarkSplit, sampling: ClipSampling, protocol: EvalProtocol,
                   options: EvalOptions) -> EvalResult:
    if options.dsl and split.task != "retrieval":
        log.warning("--dsl applies to retrieval only; ignored for %s", split.task)
    if split.task == "retrieval":
        return evaluate_retrieval(embedder, split, sampling, dsl=options.dsl, chunk_size=options.chunk_size)
    if split.task == "classification":
        templates = TEMPLATE_SETS[_templates_name(protocol, options)]
        return evaluate_zero_shot(embedder, split, sampling, templates)
    if split.task == "multiple_choice":
        return evaluate_multiple_choice(embedder, split, sampling)
    raise ValueError(f"{split.name} {split.split}: no evaluation for task {split.task!r}")


def load_eval_model(options: EvalOptions, num_frames: int | None) -> nn.Module:
    import vidla

    if not options.checkpoint:
        raise ValueError("a checkpoint is required (--checkpoint: a vidla checkpoint, a CLIP checkpoint or folder, "
                         "or a Hugging Face id)")
    return vidla.load_model(options.checkpoint, temporal=options.temporal, num_frames=num_frames)


def default_output(protocol: EvalProtocol) -> Path:
    return Path("runs") / "eval" / f"{protocol.name}-{protocol.split}"


def run_benchmark(options: EvalOptions, model: nn.Module | None = None) -> dict[str, Any]:
    """Runs one evaluation and writes its report; returns the results (as written to results.json).

    model: an already loaded model (its weights' fingerprint keys the cache); default: load options.checkpoint.
    """
    started = time.perf_counter()
    if options.threads is not None:
        if options.threads < 1:
            raise ValueError(f"threads must be at least 1, got {options.threads}")
        torch.set_num_threads(options.threads)
    protocol = get_protocol(options.benchmark).with_split(options.split)
    split, dropped = load_split(protocol, options)
    sampling = resolve_sampling(protocol, options)
    frames_from_checkpoint = protocol.frames_from_checkpoint and options.frames is None
    if model is None:
        model = load_eval_model(options, None if frames_from_checkpoint else sampling.num_frames)
    if frames_from_checkpoint:
        sampling = replace(sampling, num_frames=model.config.num_frames)
    cache = EmbeddingCache(options.cache_dir or default_cache_dir()) if options.cache else None
    embedder = Embedder(model, device=options.device, precision=options.precision, cache=cache,
                        batch_size=options.batch_size, text_batch_size=options.text_batch_size,
                        num_workers=options.workers, progress=options.progress)
    result = evaluate_split(embedder, split, sampling, protocol, options)
    edges = parse_edges(options.duration_bins) if options.duration_bins else \
        duration_edges(result.per_query["duration"], options.num_duration_bins)
    results = {
        "vidla_version": _version(), "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "benchmark": protocol.name, "task": result.task,
        "protocol": describe_protocol(protocol, split, sampling, options, model.image_size, dropped),
        "model": {"checkpoint": options.checkpoint or "(in-memory model)", "fingerprint": embedder.fingerprint,
                  "temporal": model.config.temporal, "num_frames": sampling.num_frames,
                  "image_size": model.image_size, "embed_dim": model.config.embed_dim},
        "metrics": result.metrics, "counts": result.counts,
        "duration_metric": "t2v R@1" if result.task == "retrieval" else "top-1 accuracy",
        "by_duration": by_duration(result.per_query, edges),
        "cache": embedder.log, "device": str(embedder.device), "elapsed_s": round(time.perf_counter() - started, 2),
        "options": dataclasses.asdict(options),
    }
    output = Path(options.output) if options.output else default_output(protocol)
    results["output_dir"] = str(output)
    write_report(results, output)
    return results


def _version() -> str:
    import vidla

    return vidla.__version__

"""Core subcommands: `vidla info`, `vidla models`, `vidla demo`."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import time

# Optional packages and what they enable, reported by `vidla info`.
OPTIONAL = {
    "transformers": "reference CLIP in tests, HF captioning/summarising backends",
    "huggingface_hub": "load_model('org/name') from the Hugging Face hub",
    "av": "video decoding (PyAV)",
    "tensorboard": "training logs in TensorBoard",
    "matplotlib": "plots in evaluation reports",
    "scipy": "rank statistics in tests",
    "faiss-cpu": "vidla index / vidla search (vector index)",
    "fastapi": "vidla serve (with uvicorn)",
}


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    info = subparsers.add_parser("info", help="version, torch, device and installed extras")
    info.set_defaults(func=run_info)
    models = subparsers.add_parser("models", help="list the named architectures")
    models.set_defaults(func=run_models)
    demo = subparsers.add_parser(
        "demo", help="synthetic temporal benchmark: data, training of several designs, evaluation, search",
        description="Generates twin clips whose captions differ only in event order, trains a small VidLA model "
                    "from scratch with each temporal design on the CPU, and reports retrieval and twin accuracy.")
    demo.add_argument("--output", default="runs/demo", help="where data, models and results go")
    demo.add_argument("--quick", action="store_true", help="the smallest run (about 2 minutes; the test suite's)")
    demo.add_argument("--designs", nargs="+", help="temporal designs to compare (default: meanpool hta joint)")
    demo.add_argument("--steps", type=int, help="training steps per design")
    demo.add_argument("--clips", type=int, help="number of synthetic clips")
    demo.set_defaults(func=run_demo)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
        return f"cuda x{torch.cuda.device_count()} ({', '.join(sorted(names))})"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return f"cpu ({torch.get_num_threads()} threads)"


def run_info(args: argparse.Namespace) -> int:
    import torch

    import vidla

    rows = [("vidla", vidla.__version__), ("python", platform.python_version()), ("torch", torch.__version__),
            ("device", device_description())]
    for package, purpose in OPTIONAL.items():
        version = _version(package)
        rows.append((package, f"{version or 'not installed'}  ({purpose})"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def run_models(args: argparse.Namespace) -> int:
    from vidla.models import get_model_config, list_models

    print(f"{'name':<16} {'image':>5} {'patch':>5} {'width':>5} {'layers':>6} {'embed':>5}")
    for name in list_models():
        c = get_model_config(name)
        print(f"{name:<16} {c.vision.image_size:>5} {c.vision.patch_size:>5} {c.vision.width:>5} "
              f"{c.vision.layers:>6} {c.embed_dim:>5}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from vidla.demo import DemoSettings, run

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    settings.designs = args.designs or settings.designs
    settings.steps = args.steps or settings.steps
    settings.num_clips = args.clips or settings.num_clips
    started = time.perf_counter()
    run(args.output, settings)
    print(f"demo finished in {time.perf_counter() - started:.1f} s")
    return 0

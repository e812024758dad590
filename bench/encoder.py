"""Video-encoder cost per temporal design: latency, clips/s, tokens/s, MFU, peak memory, parameters and FLOPs,
relative to meanpool (per-frame CLIP).

    python bench/encoder.py                       # CPU default: batch 1 everywhere, batch 8 at B/32 T=12
    python bench/encoder.py --batches 1 8 --repeats 10 --dtype bf16     # the full grid, e.g. on a GPU
    python bench/encoder.py --dtype bf16 --attention-backends flash efficient   # fails where SDPA would fall
                                                  # back to its unfused math kernel (prints the error)

Each measurement runs in a fresh subprocess so that peak memory belongs to that forward pass alone (CUDA:
max_memory_allocated; CPU: peak RSS growth during the forward). MACs (multiply-accumulates) per clip
count matmuls/convolutions with torch.utils.flop_counter and attention from the shape of every
scaled_dot_product_attention call (a masked dense call counts in full). Tokens/s counts the tower's tokens,
frames x (patches + 1) per clip; MFU = 2 x MACs x clips/s / the device's dense bf16 peak (bench/common.py's
table, or --peak-tflops), meaningful for --dtype bf16. Random weights.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import time

from common import count_macs, peak_tflops

DESIGNS = {  # label -> (temporal design, options)
    "meanpool": ("meanpool", {}),
    "hta": ("hta", {}),
    "hta-dense": ("hta", {"attention": "dense"}),
    "joint": ("joint", {}),
    "divided": ("divided", {}),
    "proxy": ("proxy", {}),
    "htwa": ("htwa", {}),
}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(*args) -> None:
    queue = args[-1]
    try:
        queue.put(_measure(*args[:-1]))
    except Exception as e:  # noqa: BLE001 - reported in the table (an OOM, or no fused kernel for a call)
        queue.put({"error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"})


def _measure(model_name: str, label: str, frames: int, batch: int, repeats: int, dtype: str, device: str,
             backends: list[str] | None) -> dict:
    import torch
    import vidla
    from vidla.train.perf import sdpa_backends

    torch.manual_seed(0)
    design, options = DESIGNS[label]
    model = vidla.create_model(model_name, temporal=design, num_frames=frames, **options).eval().to(device)
    params = sum(p.numel() for p in model.visual.parameters()) + sum(p.numel() for p in model.temporal.parameters())
    size = model.image_size
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bf16")
    video = torch.randn(batch, frames, 3, size, size, device=device)

    def forward():
        with torch.no_grad(), autocast, sdpa_backends(backends):
            out = model.encode_video(video)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return out

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    forward()  # warm-up, and the peak-memory measurement
    peak = (torch.cuda.max_memory_allocated() if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) - base
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward()
        times.append(time.perf_counter() - start)
    latency = statistics.median(times)
    return dict(model=model_name, design=label, frames=frames, batch=batch, params=params,
                latency_ms=1000 * latency, peak_mib=max(peak, 0) / 2**20, clips_per_s=batch / latency,
                tokens_per_s=batch / latency * frames * (model.visual.num_patches + 1),
                gmacs=count_macs(lambda: model.encode_video(video[:1])) / 1e9)


def run_one(*args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=measure, args=(*args, queue))
    process.start()
    result = queue.get()  # before join: a large result would block the child's exit
    process.join()
    return result if process.exitcode == 0 or "error" in result else {"error": f"exit code {process.exitcode}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["vidla-b32", "vidla-b16"])
    parser.add_argument("--frames", nargs="+", type=int, default=[12, 32])
    parser.add_argument("--batches", nargs="+", type=int, default=None,
                        help="default: 1 and 8 on a GPU; 1 on CPU, plus 8 for the first model at the first frame count")
    parser.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--device", default=None)
    parser.add_argument("--attention-backends", nargs="+", default=None,
                        help="restrict SDPA to these (flash efficient cudnn math)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    describe = torch.cuda.get_device_name(0) if device.startswith("cuda") else \
        f"CPU, {torch.get_num_threads()} threads"
    peak = peak_tflops(describe, args.peak_tflops) if device.startswith("cuda") else args.peak_tflops
    print(f"# encoder benchmark: {describe}, torch {torch.__version__}, {args.dtype}, median of {args.repeats}; "
          f"bf16 peak {f'{peak:g} TFLOP/s' if peak else 'unknown'}; attention backends "
          f"{args.attention_backends or 'torch default'}\n")
    grid = []
    for model_name in args.models:
        for frames in args.frames:
            batches = args.batches or ([1, 8] if device.startswith("cuda") or
                                       (model_name, frames) == (args.models[0], args.frames[0]) else [1])
            grid += [(model_name, frames, batch) for batch in batches]
    rows = []
    print("| model | T | batch | design | params (M) | GMACs/clip | latency (ms) | x meanpool | clips/s | tokens/s "
          "| MFU | peak mem (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for model_name, frames, batch in grid:
        floor = None
        for label in args.designs:
            row = run_one(model_name, label, frames, batch, args.repeats, args.dtype, device, args.attention_backends)
            row.update(model=model_name, design=label, frames=frames, batch=batch)
            rows.append(row)
            if "error" in row:
                print(f"| {model_name} | {frames} | {batch} | {label} | {row['error']} | | | | | | | |", flush=True)
                continue
            floor = row["latency_ms"] if label == "meanpool" else floor
            ratio = f"{row['latency_ms'] / floor:.2f}" if floor else "-"
            row["mfu"] = 2 * row["gmacs"] * 1e9 * row["clips_per_s"] / (peak * 1e12) if peak else None
            mfu = f"{100 * row['mfu']:.1f}%" if row["mfu"] is not None else "-"
            print(f"| {model_name} | {frames} | {batch} | {label} | {row['params'] / 1e6:.1f} | "
                  f"{row['gmacs']:.1f} | {row['latency_ms']:.1f} | {ratio} | {row['clips_per_s']:.1f} | "
                  f"{row['tokens_per_s']:,.0f} | {mfu} | {row['peak_mib']:.0f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": describe, "dtype": args.dtype, "attention_backends": args.attention_backends,
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

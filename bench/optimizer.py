"""The AdamW step alone, per implementation: the per-parameter loop, the multi-tensor (foreach) kernels and the
fused kernel, over a real model's parameters with random gradients (optim.implementation, docs/training.md).

    python bench/optimizer.py                          # vidla-b32 on this machine's device
    python bench/optimizer.py --model vidla-b16 --repeats 20

Prints the mean step time with a 95% t-interval over the timed repeats, and the ratio to the loop.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import mean_ci  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vidla-b32")
    parser.add_argument("--temporal", default="hta")
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--implementations", nargs="+", default=["for_loop", "foreach", "fused"])
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    import torch

    import vidla
    from vidla.train.config import OptimSection
    from vidla.train.optim import build_optimizer

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = vidla.create_model(args.model, temporal=args.temporal).to(device)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    params = sum(p.numel() for p in model.parameters())
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# AdamW step, {args.model} ({params / 1e6:.1f} M parameters), {name}, torch {torch.__version__}, "
          f"{args.repeats} timed steps after 2 untimed\n")
    print("| implementation | step (ms), mean ± 95% CI | x loop |")
    print("|---|---|---|")
    base = None
    for implementation in args.implementations:
        optimizer = build_optimizer(model, OptimSection(lr=1e-5, implementation=implementation))
        times = []
        for i in range(args.repeats + 2):
            start = time.perf_counter()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times.append(1000 * (time.perf_counter() - start))
        mean, half = mean_ci(times)
        base = base or mean
        print(f"| {implementation} | {mean:.0f} ± {half:.0f} | {mean / base:.2f} |", flush=True)
        del optimizer
    return 0


if __name__ == "__main__":
    sys.exit(main())

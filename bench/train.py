"""Training throughput: clips/s, peak memory and (on a GPU) model FLOPs utilisation for one model/design.

    python bench/train.py                                   # vidla-b32, HTA, 12 frames
    python bench/train.py --batch 32 --precision bf16 --grad-checkpointing    # e.g. on a GPU

Random clips and texts (no decoding: this measures the model and the optimiser step), the real training step
(two text kinds, info-NCE, AdamW). MFU = 3 x forward FLOPs per clip x clips/s / the device's peak bf16 FLOP/s
(`--peak-tflops`, default 989 for an H100/H200 SXM dense bf16).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

from common import count_macs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vidla-b32")
    parser.add_argument("--temporal", default="hta")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--batch", type=int, default=None, help="default: 32 on GPU, 4 on CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 GPU, 3 CPU)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default=None)
    parser.add_argument("--grad-checkpointing", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()

    import torch

    import vidla
    from vidla.train.config import OptimSection
    from vidla.train.loss import ContrastiveLoss
    from vidla.train.optim import build_optimizer

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    batch = args.batch or (32 if cuda else 4)
    steps = args.steps or (20 if cuda else 3)
    precision = args.precision or ("bf16" if cuda else "fp32")
    model = vidla.create_model(args.model, temporal=args.temporal, num_frames=args.frames).to(device)
    model.set_grad_checkpointing(args.grad_checkpointing)
    optimizer = build_optimizer(model, OptimSection(lr=1e-5))
    loss_fn = ContrastiveLoss()
    size = model.image_size
    video = torch.randn(batch, args.frames, 3, size, size, device=device)
    tokens = {kind: model.tokenize([f"{kind} number {i} of a batch of clips" for i in range(batch)])
              for kind in ("caption", "subtitle")}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def step():
        with autocast:
            v = model.encode_video(video)
            t = {k: model.encode_text(ids) for k, ids in tokens.items()}
        loss, _ = loss_fn(v.float(), {k: x.float() for k, x in t.items()}, model.logit_scale)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()

    step()  # warm-up
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    clips_per_s = batch / statistics.median(times)
    macs = count_macs(lambda: (model.encode_video(video[:1]),
                               [model.encode_text(ids[:1]) for ids in tokens.values()]))
    flops_per_clip = 2 * macs * 3  # forward + backward (2x forward)
    name = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"# training step benchmark: {name}, torch {torch.__version__}")
    print("| model | design | frames | batch | precision | grad ckpt | clips/s | step (s) | peak mem (GiB) | "
          "GFLOPs/clip | MFU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    mfu = f"{100 * flops_per_clip * clips_per_s / (args.peak_tflops * 1e12):.1f}%" if cuda else "-"
    print(f"| {args.model} | {args.temporal} | {args.frames} | {batch} | {precision} | "
          f"{'yes' if args.grad_checkpointing else 'no'} | {clips_per_s:.2f} | {statistics.median(times):.2f} | "
          f"{peak:.2f}{'' if cuda else ' (process RSS)'} | {flops_per_clip / 1e9:.0f} | {mfu} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

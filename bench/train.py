"""Training throughput: clips/s, tokens/s, peak memory, model FLOPs utilisation, and the largest batch that fits.

    python bench/train.py                                   # vidla-b32, HTA, 12 frames (CPU: batch 4, 3 steps)
    python bench/train.py --batch 128 --precision bf16 --grad-checkpointing both     # e.g. on a GPU
    python bench/train.py --max-batch --grad-checkpointing both                      # the largest batch that fits
    python bench/train.py --compile --optimizer fused --uint8 --attention-backends flash efficient

Random clips and texts (no decoding: this measures the model, the copy to the device and the optimiser step),
the real training step: the loop's FeatureStep (video tower, optionally torch.compiled, and text tower for two
text kinds), info-NCE, AdamW. The clips start on the host (pinned on CUDA) as float32 or, with --uint8, as
uint8 normalised on the device, as `data.uint8_frames` does.

FLOPs per clip = 3 x the forward's (backward = 2 x forward), counted from the actual matmuls and attention calls
(bench/common.py); recomputation under gradient checkpointing is not counted, so MFU is model FLOPs. MFU = FLOPs
per clip x clips/s / the device's dense bf16 peak (a table of known devices in bench/common.py; --peak-tflops
for others). Tokens/s counts the video tower's tokens: frames x (patches + 1) per clip.

--max-batch doubles the batch from --batch until a step runs out of memory, then bisects (to 1/8 of the batch):
on a GPU, torch.cuda.OutOfMemoryError; on a CPU nothing runs out, so the search stops at --max-batch-limit.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import count_macs, largest_fitting, peak_tflops  # noqa: E402


class Bench:
    """One model and its optimiser, stepping on random batches of any size."""

    def __init__(self, args: argparse.Namespace, device, grad_checkpointing: bool):
        import torch

        import vidla
        from vidla.train.config import OptimSection
        from vidla.train.loop import FeatureStep
        from vidla.train.loss import ContrastiveLoss
        from vidla.train.optim import build_optimizer

        torch.manual_seed(0)
        self.args, self.device, self.torch = args, device, torch
        options = {"attention": args.attention} if args.attention else {}
        self.model = vidla.create_model(args.model, temporal=args.temporal, num_frames=args.frames,
                                        **options).to(device)
        self.model.set_grad_checkpointing(grad_checkpointing)
        self.model.visual.channels_last = args.channels_last
        self.step_module = FeatureStep(self.model, compile=args.compile)
        self.optimizer = build_optimizer(self.model, OptimSection(lr=1e-5, implementation=args.optimizer))
        self.loss_fn = ContrastiveLoss()

    def inputs(self, batch: int, on_device: bool = False):
        """Random clips, in pinned host memory on CUDA (the step copies them), or made on the device directly
        (the batch search: tens of GB of clips would take minutes to make and pin on the host)."""
        torch, size = self.torch, self.model.image_size
        shape = (batch, self.args.frames, 3, size, size)
        where = self.device if on_device else "cpu"
        video = torch.randint(0, 256, shape, dtype=torch.uint8, device=where) if self.args.uint8 else \
            torch.randn(shape, device=where)
        if self.device.type == "cuda" and not on_device:
            video = video.pin_memory()
        tokens = {kind: self.model.tokenize([f"{kind} number {i} of a batch of clips" for i in range(batch)])
                  for kind in ("caption", "subtitle")}
        return video, tokens

    def step(self, video, tokens) -> None:
        from vidla.data.transforms import normalize
        from vidla.train.perf import sdpa_backends

        torch = self.torch
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.args.precision == "bf16")
        video = video.to(self.device, non_blocking=True)
        if video.dtype == torch.uint8:
            video = normalize(video)
        with autocast, sdpa_backends(self.args.attention_backends):
            v, t, scale = self.step_module(video, tokens)
        loss, _ = self.loss_fn(v.float(), {k: x.float() for k, x in t.items()}, scale)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def fits(self, batch: int) -> bool:
        """One step at this batch, False when it runs out of device memory."""
        torch = self.torch
        try:
            self.step(*self.inputs(batch, on_device=True))
            return True
        except torch.cuda.OutOfMemoryError:
            self.optimizer.zero_grad(set_to_none=True)
            return False
        finally:
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def measure(self, batch: int, steps: int) -> dict:
        torch = self.torch
        video, tokens = self.inputs(batch)
        started = time.perf_counter()
        self.step(video, tokens)  # warm-up (and compilation)
        first = time.perf_counter() - started
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            self.step(video, tokens)
            times.append(time.perf_counter() - started)
        peak = torch.cuda.max_memory_allocated() / 2**30 if self.device.type == "cuda" else \
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        return {"batch": batch, "step_s": statistics.median(times), "first_step_s": first, "peak_gib": peak,
                "clips_per_s": batch / statistics.median(times)}

    def flops_per_clip(self) -> float:
        video, tokens = self.inputs(1)
        video = video.to(self.device).float()
        macs = count_macs(lambda: (self.model.encode_video(video),
                                   [self.model.encode_text(ids) for ids in tokens.values()]))
        return 2 * macs * 3  # forward + backward (2x forward)

    def tokens_per_clip(self) -> int:
        return self.args.frames * (self.model.visual.num_patches + 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vidla-b32")
    parser.add_argument("--temporal", default="hta")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--attention", choices=["split", "dense"], default=None,
                        help="global-token designs: split attention (default) or the dense masked reference")
    parser.add_argument("--batch", type=int, default=None, help="default: 32 on GPU, 4 on CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 10 GPU, 3 CPU)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default=None, help="default: bf16 GPU, fp32 CPU")
    parser.add_argument("--grad-checkpointing", nargs="?", const="on", default="off", choices=["off", "on", "both"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the video tower (config: compile)")
    parser.add_argument("--optimizer", default="auto", choices=["auto", "fused", "foreach", "for_loop"])
    parser.add_argument("--channels-last", action="store_true", help="NHWC patch embedding (model.channels_last)")
    parser.add_argument("--uint8", action="store_true", help="uint8 clips on the host, normalised on the device")
    parser.add_argument("--attention-backends", nargs="+", default=None,
                        help="restrict SDPA to these (flash efficient cudnn math); without math, a call no fused "
                             "kernel accepts raises")
    parser.add_argument("--max-batch", action="store_true", help="search the largest batch that fits")
    parser.add_argument("--max-batch-limit", type=int, default=None, help="default: 16384 GPU, 8 CPU")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", help="append the rows to this JSON-lines file")
    args = parser.parse_args()

    import torch

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    args.batch = args.batch or (32 if cuda else 4)
    args.precision = args.precision or ("bf16" if cuda else "fp32")
    steps = args.steps or (10 if cuda else 3)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    peak = peak_tflops(name, args.peak_tflops) if cuda else args.peak_tflops
    print(f"# training step benchmark: {name}, torch {torch.__version__}; bf16 peak "
          f"{f'{peak:g} TFLOP/s' if peak else 'unknown (pass --peak-tflops)'}; {args.model} {args.temporal}"
          f"{f' ({args.attention} attention)' if args.attention else ''}, "
          f"{args.frames} frames, {args.precision}, compile {'on' if args.compile else 'off'}, AdamW "
          f"{args.optimizer}, {'uint8' if args.uint8 else 'float32'} clips, channels-last "
          f"{'on' if args.channels_last else 'off'}, attention backends "
          f"{args.attention_backends or 'torch default'}\n")
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.grad_checkpointing]
    if args.max_batch:
        limit = args.max_batch_limit or (16384 if cuda else 8)
        print("| grad ckpt | largest batch that fits | note |")
        print("|---|---|---|")
    else:
        print("| grad ckpt | batch | clips/s | tokens/s | step (s) | first step (s) | peak mem (GiB) | GFLOPs/clip "
              "| MFU |")
        print("|---|---|---|---|---|---|---|---|---|")
    for checkpointing in modes:
        bench = Bench(args, device, checkpointing)
        row = {"device": name, "model": args.model, "design": args.temporal, "attention": args.attention,
               "frames": args.frames,
               "precision": args.precision, "grad_checkpointing": checkpointing, "compile": args.compile,
               "optimizer": args.optimizer, "uint8": args.uint8, "channels_last": args.channels_last,
               "attention_backends": args.attention_backends}
        if args.max_batch:
            tried: list[tuple[int, bool]] = []

            def fits(batch: int) -> bool:
                ok = bench.fits(batch)
                tried.append((batch, ok))
                return ok

            batch, capped = largest_fitting(fits, args.batch, limit)
            note = f"reached the limit {limit} (no OOM)" if capped else "tried " + ", ".join(
                f"{b}{'' if ok else ' (OOM)'}" for b, ok in tried)
            row.update(max_batch=batch, capped=capped, tried=tried)
            print(f"| {'yes' if checkpointing else 'no'} | {batch}{'+' if capped else ''} | {note} |", flush=True)
        else:
            row.update(bench.measure(args.batch, steps))
            flops = bench.flops_per_clip()
            row.update(gflops_per_clip=flops / 1e9, tokens_per_s=row["clips_per_s"] * bench.tokens_per_clip(),
                       mfu=flops * row["clips_per_s"] / (peak * 1e12) if peak else None)
            mfu = f"{100 * row['mfu']:.1f}%" if row["mfu"] is not None else "-"
            print(f"| {'yes' if checkpointing else 'no'} | {args.batch} | {row['clips_per_s']:.2f} | "
                  f"{row['tokens_per_s']:,.0f} | {row['step_s']:.3f} | {row['first_step_s']:.2f} | "
                  f"{row['peak_gib']:.2f}{'' if cuda else ' (RSS)'} | {flops / 1e9:.3g} | {mfu} |", flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")
        del bench
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())

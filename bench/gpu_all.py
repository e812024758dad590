"""Every GPU measurement of issue 16 in one run (planned for about 7 minutes on one H100/H200-class GPU; a 450 s
budget stops it in time), tables to stdout and to a Markdown file.

    python bench/gpu_all.py --out $OUT/gpu_all.md      # on the GPU machine (bench/gpu_all.sh wraps this)
    python bench/gpu_all.py --smoke                     # the same steps at toy sizes, on a CPU: checks the script

Steps, most important first; each has a time limit, and once --budget seconds (default 450) have passed the rest
are skipped (and listed as skipped), so a run always ends in time and keeps what it measured; `--only 6 7` runs
the steps whose titles start with those:

 1. training step, vidla-b32 HTA 12 frames bf16 batch 128, with and without gradient checkpointing: clips/s,
    tokens/s, peak memory, MFU; and per-frame CLIP (meanpool) at the same batch for reference
 2. video tower forward, B/32 x 12 frames bf16 batch 32, per design: HTA against per-frame CLIP (target <= 1.2x)
 3. split vs dense global-token attention at B/16 x 32 frames: forward (batch 8) and training step (batch 4)
    peak memory
 4. fused-kernel check: the global-token designs with SDPA restricted to flash + memory-efficient (no math
    fallback): an error row means some attention call would have taken the slow path
 5. the largest training batch that fits, B/32 HTA 12 frames bf16, without and with gradient checkpointing
 6. optimisations, one at a time against a baseline (foreach AdamW, float32 clips, eager): fused AdamW, uint8
    clips normalised on the GPU, channels-last patch embedding, SDPA restricted to fused kernels, torch.compile
 7. the data loader on this machine's cores (12-frame clips of 720p H.264; bench/loader.py)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def steps(smoke: bool) -> list[tuple[str, list[str], int]]:
    """(title, script and arguments, time limit in seconds)."""
    b32, b16 = ("vidla-tiny", "vidla-tiny") if smoke else ("vidla-b32", "vidla-b16")
    f12, f32 = (4, 4) if smoke else (12, 32)
    big, mid, small = (4, 2, 2) if smoke else (128, 32, 8)
    n = ["--steps", "1"] if smoke else ["--steps", "10"]
    train = ["train.py", "--model", b32, "--frames", str(f12), "--precision", "bf16", *n]
    ab = [*train, "--batch", str(big), "--optimizer", "foreach"]
    return [
        ("1. training step, HTA", [*train, "--batch", str(big), "--grad-checkpointing", "both"], 120),
        ("1b. training step, per-frame CLIP (meanpool)", [*train, "--batch", str(big), "--temporal", "meanpool"], 60),
        ("2. video tower per design", ["encoder.py", "--models", b32, "--frames", str(f12), "--batches", str(mid),
                                      "--dtype", "bf16", "--repeats", "2" if smoke else "10", "--designs",
                                      "meanpool", "hta", "joint", "divided", "proxy", "htwa"], 120),
        ("3a. split vs dense attention, forward", ["encoder.py", "--models", b16, "--frames", str(f32), "--batches",
                                                  str(small), "--dtype", "bf16", "--repeats", "2" if smoke else "5",
                                                  "--designs", "meanpool", "hta", "hta-dense"], 90),
        ("3b. split attention, training step", ["train.py", "--model", b16, "--frames", str(f32), "--batch",
                                               str(small // 2), "--precision", "bf16", *n], 60),
        ("3c. dense attention, training step", ["train.py", "--model", b16, "--frames", str(f32), "--batch",
                                               str(small // 2), "--precision", "bf16", "--attention", "dense", *n],
         60),
        ("4. fused-kernel check (no math fallback)",
         ["encoder.py", "--models", b32, "--frames", str(f12), "--batches", str(small), "--dtype", "bf16",
          "--repeats", "2", "--designs", "hta", "hta-dense", "proxy", "divided",
          "--attention-backends", "flash", "efficient"], 60),
        ("5. largest batch that fits", [*train, "--batch", "32" if not smoke else "2", "--max-batch",
                                        "--grad-checkpointing", "both", *(["--max-batch-limit", "4"] if smoke else [])],
         200),
        ("6a. baseline (foreach AdamW, float32 clips, eager)", ab, 45),
        ("6b. fused AdamW", [*train, "--batch", str(big), "--optimizer", "fused"], 45),
        ("6c. uint8 clips, normalised on the GPU", [*ab, "--uint8"], 45),
        ("6d. channels-last patch embedding", [*ab, "--channels-last"], 45),
        ("6e. SDPA restricted to flash + memory-efficient", [*ab, "--attention-backends", "flash", "efficient"], 45),
        ("6f. torch.compile of the video tower", [*ab, "--compile"], 180),
        ("7. data loader", ["loader.py", "--workers", *(["0", "1"] if smoke else ["1", "16"]),
                            "--batch", "4", "--batches", "2" if smoke else "16", "--seconds", "8" if smoke else "16",
                            "--clip-seconds", "4" if smoke else "8",
                            "--ipc-batches", "2" if smoke else "10"], 150),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("gpu_all.md"))
    parser.add_argument("--budget", type=float, default=450, help="seconds after which the remaining steps are skipped")
    parser.add_argument("--smoke", action="store_true", help="toy sizes, for a CPU")
    parser.add_argument("--only", nargs="+", default=None, help="run only the steps whose title starts with these")
    args = parser.parse_args()

    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as report:
        def emit(text: str) -> None:
            print(text, flush=True)
            report.write(text + "\n")
            report.flush()

        emit(f"# bench/gpu_all.py{' --smoke' if args.smoke else ''}\n")
        emit("```\n" + _machine() + "\n```\n")
        for title, command, limit in steps(args.smoke):
            if args.only and not any(title.startswith(prefix) for prefix in args.only):
                continue
            left = args.budget - (time.perf_counter() - started)
            emit(f"## {title}\n\n`python bench/{' '.join(command)}`\n")
            if left < 10:
                emit(f"skipped: the {args.budget:.0f} s budget is spent\n")
                continue
            t0, limit = time.perf_counter(), min(limit * (4 if args.smoke else 1), left)  # a busy CPU is slow
            try:
                done = subprocess.run([sys.executable, str(HERE / command[0]), *command[1:]], env=env,
                                      capture_output=True, text=True, timeout=limit)
                output, status = done.stdout + (f"\n{done.stderr[-2000:]}" if done.returncode else ""), \
                    f"exit {done.returncode}"
            except subprocess.TimeoutExpired as e:
                output = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
                status = f"stopped at its {limit:.0f} s limit"
            emit(output.strip() + f"\n\n({status}, {time.perf_counter() - t0:.0f} s)\n")
        emit(f"total {time.perf_counter() - started:.0f} s")
    return 0


def _machine() -> str:
    lines = []
    try:
        lines.append(subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                                     "--format=csv"], capture_output=True, text=True, timeout=30).stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        lines.append("no nvidia-smi")
    import torch

    lines.append(f"torch {torch.__version__}, cuda {torch.version.cuda}, {os.cpu_count()} CPU cores")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

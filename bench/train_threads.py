"""Training speed against the number of CPU threads per process (the `threads` option of `vidla train`).

    python bench/train_threads.py                       # tiny_cpu recipe, threads 1 vs torch's default, 3 runs each
    python bench/train_threads.py --threads 1 2 4 --runs 5 --steps 16

Each run is a separate `vidla train` process (the tiny CPU recipe on random clips); runs of the settings alternate
so that a change in the machine's load hits them alike. Prints clips/s of the whole run (from metrics.jsonl) as a
mean with a 95% t-interval over the runs, and torch's default thread count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import mean_ci  # noqa: E402  (bench/ is on sys.path when a script runs)

REPO = Path(__file__).resolve().parents[1]


def run(threads: str, steps: int, folder: Path) -> float:
    extra = [] if threads == "default" else [f"threads={threads}"]
    subprocess.run([sys.executable, "-m", "vidla.cli", "train", "--config", str(REPO / "configs/train/tiny_cpu.yaml"),
                    f"output_dir={folder}", f"steps={steps}", f"checkpoint_every={steps}", "--no-progress", *extra],
                   check=True, capture_output=True, cwd=REPO)
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return rows[-1]["clips_per_s"]


def interval(values: list[float]) -> str:
    mean, half = mean_ci(values)
    if len(values) < 2:
        return f"{mean:.2f}"
    return f"{mean:.2f} [{mean - half:.2f}, {mean + half:.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", nargs="+", default=["1", "default"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()

    import torch
    from tqdm import tqdm

    speeds: dict[str, list[float]] = {t: [] for t in args.threads}
    with tempfile.TemporaryDirectory() as tmp, tqdm(total=args.runs * len(args.threads), desc="runs") as bar:
        for r in range(args.runs):
            for threads in args.threads:
                speeds[threads].append(run(threads, args.steps, Path(tmp) / f"{threads}_{r}"))
                bar.update(1)
    print(f"\ntorch's default: {torch.get_num_threads()} threads; {args.runs} runs of {args.steps} steps each\n")
    print("| threads | clips/s, mean [95% t-interval] | runs |")
    print("|---|---|---|")
    for threads, values in speeds.items():
        print(f"| {threads} | {interval(values)} | {', '.join(f'{v:.2f}' for v in values)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

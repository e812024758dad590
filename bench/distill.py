"""VidLanKD on a CPU: a text student distilled from a vidla teacher against the same student trained with masked
LM alone, several seeds each, probed on Rotten Tomatoes sentiment and on synthetic-video knowledge.

    python bench/distill.py                        # teacher (once), 2 x 3 students, probes (see docs/benchmarks.md)
    python bench/distill.py --designs distill mlm_only distill_random     # + the untrained-teacher control
    python bench/distill.py --designs mlm_only --seeds 1                  # one stage (stages are cached)
    python bench/distill.py --seeds 0 1 2 3 4 --steps 800 --output runs/bench_distill_long

On 2 idle cores the teacher takes about 10 min and a student a few minutes; on this project's shared VM (load
12-20) they took 34 min and 5-16 min.

1. Teacher: `vidla demo`'s recipe (vidla.demo.synthesise + vidla.demo.train): 800 synthetic twin clips, the
   vidla-demo model with HTA trained from scratch on captions and subtitles. Trained once, reused.
2. Corpus: the texts of the teacher's training clips (captions and subtitles, one per line, unpaired) and the
   Rotten Tomatoes training-split snippets (never the test split).
3. For each seed: `vidla distill-text` with NST + NT-Xent (the defaults), with `--mlm-only`, and (the control
   `distill_random`) from the teacher's architecture untrained; same student init, data order, masks and steps.
4. `vidla eval-text` probes on each student (and on the teacher's own text embedding); mean and 95% t-interval
   over seeds; a table on stdout, results.json and a plot in the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from common import mean_ci  # noqa: E402  (bench/ is on sys.path when a script runs)

METRICS = [("rotten_tomatoes", "accuracy", "RT sentiment, probe"),
           ("synth_order", "accuracy", "synth order, probe"),
           ("synth_order", "zero_shot_accuracy", "synth order, zero-shot"),
           ("synth_action", "accuracy", "synth action, probe"),
           ("synth_action", "zero_shot_accuracy", "synth action, zero-shot")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="runs/bench_distill")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=400, help="student training steps")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--teacher-steps", type=int, default=360)
    parser.add_argument("--designs", nargs="+", default=["distill", "mlm_only"],
                        choices=["distill", "mlm_only", "distill_random"],
                        help="distill_random: the control, distilled from the same architecture untrained")
    parser.add_argument("--student", nargs="*", default=["student.width=64", "student.layers=2", "student.heads=2",
                                                          "student.mlp_dim=256", "student.context_length=32",
                                                          "optim.lr=1e-3"],
                        help="student/optimiser overrides (default: a CPU-sized student)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    out = Path(args.output)
    started = time.perf_counter()
    # the baseline needs no teacher, only its training texts: `--designs mlm_only` runs while the teacher trains
    teacher = train_teacher(out / "teacher", args.teacher_steps) if "distill" in args.designs else \
        out / "teacher" / "hta" / "model.safetensors"
    corpus = out / "corpus.txt"
    if not corpus.is_file():
        write_corpus(corpus, out / "teacher" / "data" / "train.jsonl")
    results = {"settings": vars(args), "runs": {}}
    for seed in args.seeds:
        for design in args.designs:
            folder = out / f"{design}_seed{seed}"
            source = random_teacher(out / "teacher_random") if design == "distill_random" else teacher
            seconds = distil(folder, source, corpus, seed, design == "mlm_only", args)
            row = probe(folder / "student.safetensors", folder / "probe.json")
            row["train_seconds"] = seconds
            row["final"] = json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])
            results["runs"].setdefault(design, []).append(row)
            print(f"{design} seed {seed}: {json.dumps({k: v for k, v in row.items() if k != 'final'})}", flush=True)
    if teacher.is_file():  # the teacher's own text embedding, probed the same way (one model)
        results["runs"] = {"teacher": [probe(teacher, out / "teacher" / "probe.json")], **results["runs"]}
    if "distill_random" in args.designs:
        untrained = random_teacher(out / "teacher_random")
        results["runs"] = {"teacher_untrained": [probe(untrained, untrained.parent / "probe.json")],
                           **results["runs"]}
    results["summary"] = summarise(results["runs"])
    results["wall_seconds"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print_table(results["summary"], len(args.seeds))
    plot(results["summary"], out / "distill.png")
    print(f"\n{results['wall_seconds'] / 60:.1f} min; results: {out / 'results.json'}")
    return 0


def train_teacher(folder: Path, steps: int) -> Path:
    from vidla.demo import DemoSettings, synthesise, train

    model = folder / "hta" / "model.safetensors"
    if model.is_file():
        print(f"teacher: {model} (already trained)")
        return model
    settings = DemoSettings(steps=steps, workers=1)
    data = synthesise(folder / "data", settings, progress=False)
    train("hta", data["train"], folder / "hta", settings, progress=False)
    return model


def random_teacher(folder: Path) -> Path:
    """The teacher's architecture with its initial (seed 0) weights: what distillation gives without video."""
    import torch

    import vidla
    from vidla.demo import DemoSettings

    path = folder / "model.safetensors"
    if not path.is_file():
        torch.manual_seed(0)
        settings = DemoSettings()
        model = vidla.create_model(settings.model, temporal="hta", num_frames=settings.num_frames)
        folder.mkdir(parents=True, exist_ok=True)
        vidla.save_model(model, path)
    return path


def write_corpus(path: Path, manifest: Path) -> Path:
    from vidla.distill.corpus import read_corpus
    from vidla.distill.evaluate import rotten_tomatoes_train_texts

    texts = read_corpus([manifest]) + rotten_tomatoes_train_texts()
    path.write_text("\n".join(" ".join(t.split()) for t in texts) + "\n", encoding="utf-8")
    print(f"corpus: {len(texts)} texts in {path}")
    return path


def distil(folder: Path, teacher: Path, corpus: Path, seed: int, mlm_only: bool, args) -> float:
    from vidla.distill.cli import run_distill
    from vidla.cli import build_parser

    if (folder / "student.safetensors").is_file():
        return json.loads((folder / "seconds.json").read_text())["seconds"]
    argv = ["distill-text", "--teacher", str(teacher), "--corpus", str(corpus), "--output", str(folder),
            "--no-progress", f"seed={seed}", f"steps={args.steps}", f"batch_size={args.batch}",
            f"checkpoint_every={args.steps}", "keep_checkpoints=1", "log_every=20", *args.student]
    if mlm_only:
        argv.append("--mlm-only")
    started = time.perf_counter()
    if run_distill(build_parser().parse_args(argv)) != 0:
        raise SystemExit(f"distill-text failed for {folder}")
    seconds = time.perf_counter() - started
    (folder / "seconds.json").write_text(json.dumps({"seconds": seconds}))
    return seconds


def probe(model: Path, cache: Path) -> dict:
    from vidla.distill.evaluate import evaluate_text, load_text_encoder

    if cache.is_file():
        return json.loads(cache.read_text())
    results = evaluate_text(load_text_encoder(model))
    row = {f"{task}.{key}": results[task][key] for task, key, _ in METRICS}
    cache.write_text(json.dumps(row))
    return row




def summarise(runs: dict) -> dict:
    return {design: {f"{task}.{key}": mean_ci([r[f"{task}.{key}"] for r in rows]) for task, key, _ in METRICS}
            for design, rows in runs.items()}


def print_table(summary: dict, seeds: int) -> None:
    print(f"\n| model | {' | '.join(name for _, _, name in METRICS)} |")
    print(f"|---|{'---|' * len(METRICS)}")
    for design, row in summary.items():
        cells = [f"{m:.1f}" if h != h else f"{m:.1f} ± {h:.1f}" for m, h in
                 (row[f"{task}.{key}"] for task, key, _ in METRICS)]
        print(f"| {design} | {' | '.join(cells)} |")
    print(f"(accuracy %, mean ± 95% t-interval half-width over {seeds} seeds; the teacher is one model)")


def plot(summary: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(summary)
    for i, (design, row) in enumerate(summary.items()):
        values = [row[f"{task}.{key}"] for task, key, _ in METRICS]
        ax.bar([j + i * width for j in range(len(METRICS))], [m for m, _ in values], width,
               yerr=[0 if h != h else h for _, h in values], capsize=3, label=design)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(METRICS))], [n for _, _, n in METRICS], fontsize=8)
    ax.axhline(50, color="grey", linestyle="--", linewidth=1)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(40, 100)
    ax.legend(fontsize=8)
    ax.set_title("VidLanKD in vidla: distilled student vs masked-LM-only (95% t-intervals)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot: {path}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())

"""LF-VILA's MTC loss on the synthetic temporal benchmark: paragraph-to-video retrieval, twin accuracy and
sentence-to-clip accuracy with and without MTC, for hta and htwa, over seeds; mean and 95% t-interval.

    python bench/lfvila_mtc.py --output runs/lfvila_mtc                    # 2 designs x 2 arms x 3 seeds
    python bench/lfvila_mtc.py --output runs/lfvila_mtc --steps 400 --seeds 0 1 2 3 4

Data: `vidla data synth`'s twin clips, all with 4 events (one second each; the twin swaps two neighbouring
events), each clip one multi-clip sample of 4 clips (the events) with their sentences; the paragraph is the
sentences joined. Both arms train the same model from scratch on the same samples and frames (8 frames, 2 per
clip) with the paragraph-video info-NCE; the MTC arm adds `loss.mtc_weight=0.25`. Metrics on the test samples:
paragraph -> video R@1 (all test samples are candidates), twin accuracy (the paragraph scores its own video
above its twin, 50% = chance) and sentence -> clip accuracy (a sentence's nearest of its own video's 4 clip
features is its clip, 25% = chance; the final-layer clip features MTC trains). Each finished run is kept in
OUTPUT/results.jsonl, so an interrupted run continues; the table and docs/lfvila_mtc.png come at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

from common import mean_ci  # noqa: E402  (bench/ is on sys.path when a script runs)

METRICS = {"p2v_r1": "paragraph->video R@1", "twin_accuracy": "twin accuracy", "clip_accuracy": "sentence->clip acc."}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="runs/lfvila_mtc")
    parser.add_argument("--designs", nargs="+", default=["hta", "htwa"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--clips", type=int, default=240, help="synthetic clips (twin pairs x 2), 25%% for test")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--plot", default="docs/lfvila_mtc.png")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    output = Path(args.output)
    manifests = make_data(output / "data", args.clips)
    done = {(r["design"], r["mtc"], r["seed"]): r for r in read_results(output / "results.jsonl")}
    for seed in args.seeds:  # seed outermost: an interrupted run still has every group at equal seeds
        for design in args.designs:
            for mtc in (0.0, 0.25):
                if (design, mtc, seed) in done:
                    continue
                started = time.perf_counter()
                model = train(design, mtc, seed, manifests["train"], output / f"{design}_mtc{mtc}_seed{seed}", args)
                row = {"design": design, "mtc": mtc, "seed": seed, **evaluate(model, manifests["test"]),
                       "seconds": round(time.perf_counter() - started, 1)}
                print(json.dumps(row), flush=True)
                with (output / "results.jsonl").open("a") as f:
                    f.write(json.dumps(row) + "\n")
                done[(design, mtc, seed)] = row
    rows = [r for r in done.values() if r["design"] in args.designs and r["seed"] in args.seeds]
    print(table(rows))
    plot(rows, Path(args.plot))


def make_data(folder: Path, clips: int) -> dict[str, Path]:
    """4-event twin clips, as multi-clip manifests (one 4-clip sample per clip, twins adjacent)."""
    from vidla.data.manifest import read_manifest, write_manifest
    from vidla.data.multiclip import from_segments
    from vidla.data.temporal_synth import generate

    out = {split: folder / f"{split}_multiclip.jsonl" for split in ("train", "test")}
    if all(p.is_file() for p in out.values()):
        return out
    paths = generate(folder, num_clips=clips, seed=0, test_fraction=0.25, mix={"medium": 1.0}, progress=False)
    for split, path in paths.items():
        write_manifest(out[split], from_segments(read_manifest(path), clips=4))
    return out


def train(design: str, mtc: float, seed: int, manifest: Path, folder: Path, args):
    import vidla
    from vidla.train.config import load_train_config
    from vidla.train.loop import Trainer

    steps = args.steps
    config = load_train_config(None, [
        "model.name=vidla-demo", f"model.temporal={design}", f"data.train={manifest}", "data.num_frames=8",
        "data.clips=4", "data.text_kinds=[caption]", "data.augment=false", "data.workers=0", "data.group_size=2",
        f"loss.mtc_weight={mtc}", "optim.lr=5e-4", "optim.temporal_lr=2.5e-3", "optim.min_lr=1e-5",
        f"optim.warmup_steps={steps // 10}", "optim.weight_decay=0.05", f"steps={steps}", f"batch_size={args.batch}",
        "precision=fp32", f"checkpoint_every={steps}", "keep_checkpoints=1", "log_every=20", "tensorboard=false",
        f"seed={seed}", f"output_dir={folder}", "device=cpu"])
    Trainer(config, progress=False).run()
    return vidla.load_model(folder / "model.safetensors").eval()


def evaluate(model, manifest: Path) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    from vidla.evaluate import retrieval_metrics
    from vidla.train.clips import MultiClipSamples

    samples = MultiClipSamples(str(manifest), clips=4, num_frames=8, image_size=model.image_size, augment=False)
    records = samples.records
    videos, clip_features, sentences, paragraphs = [], [], [], []
    with torch.no_grad():
        for start in range(0, len(samples), 32):
            batch = [samples[i] for i in range(start, min(start + 32, len(samples)))]
            video, clips = model.encode_video_clips(torch.stack([s["video"] for s in batch]), clips=4)
            videos.append(video)
            clip_features.append(clips)
            sentences.append(model.encode_text([t for s in batch for t in s["sentences"]]).unflatten(0, (-1, 4)))
            paragraphs.append(model.encode_text([s["texts"]["caption"] for s in batch]))
    videos, paragraphs = F.normalize(torch.cat(videos), dim=-1), F.normalize(torch.cat(paragraphs), dim=-1)
    similarity = paragraphs @ videos.T
    position = {r.extra["source_id"]: i for i, r in enumerate(records)}
    twin = torch.tensor([position[r.extra["twin"]] for r in records])
    own, other = similarity.diag(), similarity[torch.arange(len(records)), twin]
    wins = (own > other).float() + 0.5 * (own == other).float()
    # sentence j of a sample against the sample's 4 clips
    per_clip = torch.einsum("bjd,bkd->bjk", F.normalize(torch.cat(sentences), dim=-1),
                            F.normalize(torch.cat(clip_features), dim=-1))
    clip_hits = (per_clip.argmax(-1) == torch.arange(4)).float()
    return {"p2v_r1": retrieval_metrics(similarity, list(range(len(records))))["t2v_r1"],
            "twin_accuracy": 100 * wins.mean().item(), "clip_accuracy": 100 * clip_hits.mean().item()}


def read_results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []




def groups(rows: list[dict]) -> dict[tuple[str, float], list[dict]]:
    out: dict[tuple[str, float], list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["design"], r["mtc"], r["seed"])):
        out.setdefault((row["design"], row["mtc"]), []).append(row)
    return out


def table(rows: list[dict]) -> str:
    lines = ["| design | MTC | seeds | " + " | ".join(METRICS.values()) + " | s/run |",
             "|---|---|---|" + "---|" * len(METRICS) + "---|"]
    for (design, mtc), members in groups(rows).items():
        cells = []
        for key in METRICS:
            mean, half = mean_ci([r[key] for r in members])
            cells.append(f"{mean:.1f} ± {half:.1f}")
        seconds = statistics.fmean(r["seconds"] for r in members)
        lines.append(f"| {design} | {'0.25' if mtc else 'off'} | {len(members)} | " + " | ".join(cells) +
                     f" | {seconds:.0f} |")
    lines.append("(mean ± half-width of the 95% t-interval over seeds; twin accuracy 50 = chance, "
                 "sentence->clip 25 = chance)")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = groups(rows)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(12, 3.6))
    designs = sorted({design for design, _ in grouped})
    for ax, (key, title) in zip(axes, METRICS.items()):
        for offset, (mtc, colour) in enumerate(((0.0, "tab:grey"), (0.25, "tab:blue"))):
            xs, means, halves = [], [], []
            for i, design in enumerate(designs):
                members = grouped.get((design, mtc), [])
                if members:
                    mean, half = mean_ci([r[key] for r in members])
                    xs.append(i + (offset - 0.5) * 0.35)
                    means.append(mean)
                    halves.append(0 if math.isnan(half) else half)
                    ax.scatter([xs[-1]] * len(members), [r[key] for r in members], color=colour, s=10, zorder=3)
            ax.bar(xs, means, 0.35, yerr=halves, capsize=4, color=colour, alpha=0.6,
                   label="MTC 0.25" if mtc else "no MTC")
        chance = {"twin_accuracy": 50, "clip_accuracy": 25}.get(key)
        if chance:
            ax.axhline(chance, color="black", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(designs)), designs)
        ax.set_title(f"{title} (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle("LF-VILA's MTC loss on the synthetic temporal benchmark (bars: mean, 95% t-interval; dots: seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()

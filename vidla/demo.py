"""`vidla demo`: the whole system on a synthetic temporal-reasoning benchmark, offline, on a CPU, in minutes.

1. synthesise twin clips whose captions differ only in event order (vidla.data.temporal_synth), as mp4 files
   and manifests;
2. train the same small model from scratch with several temporal designs (meanpool, hta, ...), each through
   `vidla train`'s Trainer with captions and subtitles;
3. evaluate text-to-video retrieval (overall and per clip length) and twin accuracy with vidla.evaluate;
4. print a table, save a plot and results.json, and answer a few text queries with the best model.

Horizontal flips would swap "left" and "right" in the captions, so the demo trains without augmentation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

RESULTS = "results.json"


@dataclass
class DemoSettings:
    num_clips: int = 800
    steps: int = 360
    batch_size: int = 32
    num_frames: int = 8
    model: str = "vidla-demo"
    designs: list[str] = field(default_factory=lambda: ["meanpool", "hta", "joint"])
    lr: float = 5e-4
    temporal_lr: float = 2.5e-3  # the designs' new temporal parameters (none for meanpool) learn faster
    seed: int = 0
    workers: int = 2

    @classmethod
    def quick(cls) -> "DemoSettings":
        return cls(num_clips=160, steps=40, batch_size=16, designs=["meanpool", "hta"])


def run(output: str | Path = "runs/demo", settings: DemoSettings | None = None, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    settings = settings or (DemoSettings.quick() if quick else DemoSettings())
    output = Path(output)
    data = synthesise(output / "data", settings, progress)
    results: dict[str, Any] = {"settings": asdict(settings), "designs": {}}
    from vidla.data.manifest import read_manifest_resolved

    test_clips = read_manifest_resolved(data["test"])
    similarities = {}  # caption x clip, per design: embedded once, for the metrics and for the queries
    for design in settings.designs:
        print(f"\n== {design}: training {settings.model} from scratch for {settings.steps} steps")
        model = train(design, data["train"], output / design, settings, progress)
        texts, videos = embed(model, test_clips, settings, progress)
        similarities[design] = texts @ videos.T
        results["designs"][design] = evaluate(similarities[design], test_clips)
    print_table(results)
    results["plot"] = str(plot(results, output / "demo_results.png"))
    results["verdict"] = verdict(results)
    print("\n" + results["verdict"])
    if settings.steps < 100:
        print(f"(a {settings.steps}-step smoke run: too short for any design to learn event order; "
              "`vidla demo` trains long enough to compare them)")
    best = max(similarities, key=lambda d: results["designs"][d]["twin_accuracy"])
    results["queries"] = answer_queries(similarities[best], best, test_clips)
    from vidla.io import atomic_write

    with atomic_write(output / RESULTS) as f:
        json.dump(results, f, indent=1)
    print(f"\nresults: {output / RESULTS}, plot: {results['plot']}")
    print_search_command(output, best, test_clips[0].texts["caption"])
    return results


def print_search_command(output: Path, design: str, query: str) -> None:
    """How to search the demo's test clips with the model it trained (docs/search.md)."""
    from shlex import quote

    index = quote(str(output / "search.index"))
    manifest, checkpoint = quote(str(output / "data" / "test.jsonl")), quote(str(output / design / "model.safetensors"))
    print("\nsearch the test clips with this model:\n"
          f"  vidla index {manifest} --checkpoint {checkpoint} --out {index} && vidla search {index} {quote(query)} "
          f"&& vidla serve {index}")


def synthesise(folder: Path, settings: DemoSettings, progress: bool) -> dict[str, Path]:
    from vidla.data.temporal_synth import generate

    readme = folder / "README.json"
    wanted = {"clips": settings.num_clips // 2 * 2, "seed": settings.seed}
    if readme.is_file():
        existing = json.loads(readme.read_text())
        if {k: existing.get(k) for k in wanted} == wanted:
            print(f"using the synthetic clips in {folder}")
            return {split: folder / f"{split}.jsonl" for split in ("train", "test")}
    print(f"synthesising {wanted['clips']} clips in {folder}")
    return generate(folder, num_clips=settings.num_clips, seed=settings.seed, progress=progress)


def train(design: str, manifest: Path, folder: Path, settings: DemoSettings, progress: bool):
    import vidla
    from vidla.train.config import load_train_config
    from vidla.train.loop import Trainer

    config = load_train_config(None, [
        f"model.name={settings.model}", f"model.temporal={design}", f"data.train={manifest}",
        f"data.num_frames={settings.num_frames}", "data.augment=false", f"data.workers={settings.workers}",
        "data.group_size=2",  # twins are consecutive in the manifest: each is the other's hard negative
        f"optim.lr={settings.lr}", f"optim.temporal_lr={settings.temporal_lr}", f"optim.min_lr={settings.lr / 50}",
        f"optim.warmup_steps={settings.steps // 10}",
        "optim.weight_decay=0.05", f"steps={settings.steps}", f"batch_size={settings.batch_size}",
        "precision=fp32", f"checkpoint_every={settings.steps}", "keep_checkpoints=1", "log_every=10",
        "tensorboard=false", f"seed={settings.seed}", f"output_dir={folder}", "device=cpu"])
    Trainer(config, progress=progress).run()
    return vidla.load_model(folder / "model.safetensors").eval()


@torch.no_grad()
def embed(model, records, settings: DemoSettings, progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised caption and video embeddings of the test clips."""
    from vidla.evaluate import ClipSampling, Embedder

    embedder = Embedder(model, device="cpu", batch_size=32, num_workers=settings.workers, progress=progress)
    videos = embedder.videos(records, ClipSampling(num_frames=settings.num_frames)).features[:, 0]
    texts = embedder.texts([r.texts["caption"] for r in records])
    return F.normalize(texts, dim=-1), F.normalize(videos, dim=-1)


def evaluate(similarity: torch.Tensor, records) -> dict[str, Any]:
    """From the caption x clip similarity of the test clips: text-to-video retrieval (overall and per clip
    length, queries ranked among all test clips) and twin accuracy: how often a caption scores its own clip
    above its twin (ties count half; 50% = chance)."""
    from vidla.evaluate import retrieval_metrics, text_to_video_ranks
    from vidla.evaluate.metrics import twin_wins
    from vidla.evaluate.tasks import twin_indices

    identity = list(range(len(records)))
    out: dict[str, Any] = {k: v for k, v in retrieval_metrics(similarity, identity).items() if k.startswith("t2v")}
    ranks = text_to_video_ranks(similarity, identity)
    wins = torch.from_numpy(twin_wins(similarity, identity, twin_indices(records)))  # vidla eval's metric
    out["twin_accuracy"] = 100 * wins.mean().item()
    for scale in ("short", "medium", "long"):
        rows = [i for i, r in enumerate(records) if r.extra["scale"] == scale]
        if rows:
            out[scale] = {"clips": len(rows), "t2v_r1": 100 * float((ranks[rows] <= 1).mean()),
                          "t2v_r5": 100 * float((ranks[rows] <= 5).mean()),
                          "twin_accuracy": 100 * wins[rows].mean().item()}
    return out


def print_table(results: dict[str, Any]) -> None:
    print("\n| design | t2v R@1 | R@5 | R@10 | MdR | twin acc. | short R@1 / twin | medium R@1 / twin | long R@1 / twin |")
    print("|---|---|---|---|---|---|---|---|---|")
    for design, m in results["designs"].items():
        bins = " | ".join(f"{m[s]['t2v_r1']:.1f} / {m[s]['twin_accuracy']:.1f}" if s in m else "-"
                          for s in ("short", "medium", "long"))
        print(f"| {design} | {m['t2v_r1']:.1f} | {m['t2v_r5']:.1f} | {m['t2v_r10']:.1f} | {m['t2v_mdr']:.0f} | "
              f"{m['twin_accuracy']:.1f} | {bins} |")
    print("(twin accuracy: a caption scores its own clip above its twin, whose events come in another order; "
          "50 = chance, the ceiling of a design blind to frame order)")


def verdict(results: dict[str, Any]) -> str:
    designs = results["designs"]
    if "meanpool" not in designs or "hta" not in designs:
        return "verdict: run both meanpool and hta to compare them"
    hta, mean = designs["hta"]["twin_accuracy"], designs["meanpool"]["twin_accuracy"]
    if hta > mean + 5:
        return (f"verdict: HTA beats meanpool on order-dependent queries (twin accuracy {hta:.1f}% vs "
                f"{mean:.1f}%)")
    return (f"verdict: HTA does NOT beat meanpool on order-dependent queries in this run (twin accuracy {hta:.1f}% "
            f"vs {mean:.1f}%); see docs/benchmarks.md")


def plot(results: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return None
    designs = list(results["designs"])
    scales = ["short", "medium", "long"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.8 / len(designs)
    for i, design in enumerate(designs):
        m = results["designs"][design]
        xs = [j + i * width for j in range(len(scales))]
        axes[0].bar(xs, [m.get(s, {}).get("t2v_r1", 0) for s in scales], width, label=design)
        axes[1].bar(xs, [m.get(s, {}).get("twin_accuracy", 0) for s in scales], width, label=design)
    for ax, title in zip(axes, ["text-to-video R@1 (%)", "twin accuracy (%)"]):
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(scales))], scales)
        ax.set_title(title)
    axes[1].axhline(50, color="grey", linestyle="--", linewidth=1, label="chance")
    axes[1].legend(fontsize=8)
    fig.suptitle("vidla demo: synthetic temporal benchmark, by clip length")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def answer_queries(similarity: torch.Tensor, design: str, records, top: int = 3) -> list[dict]:
    """Exact search of the test clips for a few captions (each clip's twin is its hardest distractor)."""
    print(f"\ntext queries against the {len(records)} test clips ({design} model):")
    answers = []
    for i in range(0, len(records), max(1, len(records) // 3))[:3]:
        scores = similarity[i]
        best = scores.topk(top).indices.tolist()
        print(f"  query: {records[i].texts['caption']!r}")
        for rank, j in enumerate(best, start=1):
            mark = "  <- the clip it describes" if j == i else "  <- its twin" if records[j].id == records[i].extra["twin"] else ""
            print(f"    {rank}. {records[j].id} ({scores[j]:.3f}){mark}")
        answers.append({"query": records[i].texts["caption"], "top": [records[j].id for j in best],
                        "target": records[i].id})
    return answers

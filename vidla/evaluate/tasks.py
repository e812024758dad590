"""The evaluation tasks on a benchmark split: retrieval, zero-shot classification, multiple choice, and a
fine-tuned classifier. Each embeds through an `Embedder` (batched, cached) and returns an `EvalResult`.

    split = vidla.data.load_benchmark("msrvtt", "/data/msrvtt")                  # MSR-VTT 1k-A
    embedder = Embedder(model, cache=EmbeddingCache("~/.cache/vidla/embeddings"))
    result = evaluate_retrieval(embedder, split, ClipSampling(num_frames=32), dsl=True)
    result.metrics["t2v_r1"], result.metrics["t2v_r1_dsl"]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from vidla.data.benchmarks.base import BenchmarkSplit
from vidla.data.manifest import ClipRecord
from vidla.evaluate.classification import VideoClassifier, average_view_logits
from vidla.evaluate.embed import ClipSampling, Embedder, evaluating
from vidla.evaluate.metrics import (
    DEFAULT_CHUNK_SIZE,
    DualSoftmax,
    EmbeddingSimilarity,
    classification_metrics,
    classification_ranks,
    metrics_from_ranks,
    retrieval_ranks,
    twin_wins,
)
from vidla.evaluate.zeroshot import (
    KINETICS_TEMPLATES,
    class_embeddings,
    cosine_scores,
    multiple_choice_correct,
    multiple_choice_scores,
    prompts_for,
)


@dataclass
class EvalResult:
    """metrics: the figures, by name. per_query: for the duration plot, one entry per scored query:
    "hit" (bool: t2v R@1 hit / top-1 correct), "hit_dsl" with DSL, "duration" (s) of the query's video.
    counts: how many videos, texts, queries the figures are over."""

    task: str
    metrics: dict[str, float]
    per_query: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def paragraph_split(split: BenchmarkSplit) -> BenchmarkSplit:
    """One query per video: its texts joined in order with a space (paragraph-to-video retrieval).

    DiDeMo and ActivityNet readers already return paragraphs; this is for other splits (and a no-op on those).
    """
    per_video = split.video_to_texts
    texts, owners = [], []
    for video, indices in enumerate(per_video):
        if indices:
            texts.append(" ".join(split.texts[i].strip() for i in indices))
            owners.append(video)
    return dataclasses.replace(split, texts=texts, text_to_video=owners)


def drop_missing(split: BenchmarkSplit) -> BenchmarkSplit:
    """The split without the videos whose files were not found (and without their texts, options, answers)."""
    missing = set(split.missing)
    keep = [i for i, video in enumerate(split.videos) if video.id not in missing]
    new_index = {old: new for new, old in enumerate(keep)}
    kept_texts = [t for t, video in enumerate(split.text_to_video) if video in new_index]
    new_text = {old: new for new, old in enumerate(kept_texts)}
    answers = [new_text[split.answers[i]] for i in keep] if split.answers else []
    return dataclasses.replace(split, videos=[split.videos[i] for i in keep],
                               texts=[split.texts[t] for t in kept_texts],
                               text_to_video=[new_index[split.text_to_video[t]] for t in kept_texts],
                               answers=answers, missing=[])


def twin_indices(videos: Sequence[ClipRecord]) -> list[int | None]:
    """For each clip, the position of the clip its record names as `"twin"` (an id; docs/manifest.md), or None.
    A twin id that is not in the list is an error naming both clips."""
    position = {v.id: i for i, v in enumerate(videos) if v.id is not None}
    out: list[int | None] = []
    for video in videos:
        twin = (video.extra or {}).get("twin")
        if twin is not None and twin not in position:
            raise ValueError(f"clip {video.id}: its twin {twin!r} is not among the evaluated clips")
        out.append(None if twin is None else position[twin])
    return out


def evaluate_retrieval(embedder: Embedder, split: BenchmarkSplit, sampling: ClipSampling, *, dsl: bool = False,
                       chunk_size: int = DEFAULT_CHUNK_SIZE) -> EvalResult:
    """Text-to-video and video-to-text metrics (`t2v_*`, `v2t_*`, and `*_dsl` beside them when `dsl`), and
    `twin_accuracy` when the clips' records name their twins (paired distractors, e.g. `vidla data synth`)."""
    if not split.texts:
        raise ValueError(f"{split.name} {split.split}: no texts to retrieve with")
    videos = embedder.videos(split.videos, sampling, desc=f"{split.name} videos")
    texts = embedder.texts(split.texts, desc=f"{split.name} texts")
    similarity = EmbeddingSimilarity(texts, videos.pooled(), device=embedder.device)
    ranks = retrieval_ranks(similarity, split.text_to_video, chunk_size)
    metrics = metrics_from_ranks(ranks)
    durations = videos.durations.numpy()[np.asarray(split.text_to_video)]
    per_query = {"hit": ranks["t2v"] <= 1, "duration": durations}
    if dsl:
        dsl_ranks = retrieval_ranks(DualSoftmax(similarity, chunk_size=chunk_size), split.text_to_video, chunk_size)
        metrics.update(metrics_from_ranks(dsl_ranks, "_dsl"))
        per_query["hit_dsl"] = dsl_ranks["t2v"] <= 1
    counts = {"videos": len(split.videos), "texts": len(split.texts), "t2v_queries": len(ranks["t2v"]),
              "v2t_queries": len(ranks["v2t"])}
    twins = twin_indices(split.videos)
    if any(t is not None for t in twins):
        wins = twin_wins(similarity, split.text_to_video, twins, chunk_size)
        metrics["twin_accuracy"] = 100.0 * float(np.nanmean(wins))
        counts["twin_queries"] = int((~np.isnan(wins)).sum())
    return EvalResult("retrieval", metrics, per_query, counts)


def _labels(split: BenchmarkSplit) -> list[int]:
    labels = split.labels
    if not split.class_names or any(label is None for label in labels):
        raise ValueError(f"{split.name} {split.split}: classification needs class names and a label for every "
                         "video (a test split without labels cannot be scored)")
    return [int(label) for label in labels]


def _classification_result(task: str, scores: torch.Tensor, labels: list[int], durations: torch.Tensor,
                           num_classes: int) -> EvalResult:
    metrics = classification_metrics(scores, labels)
    hits = classification_ranks(scores, labels) <= 1
    return EvalResult(task, metrics, {"hit": hits, "duration": durations.numpy()},
                      {"videos": len(labels), "classes": num_classes})


def evaluate_zero_shot(embedder: Embedder, split: BenchmarkSplit, sampling: ClipSampling,
                       templates: Sequence[str] = KINETICS_TEMPLATES) -> EvalResult:
    """Zero-shot classification: top-1/top-5 against the class names put in `templates`, averaged per class."""
    labels = _labels(split)
    prompts = prompts_for(split.class_names, templates)
    classes = class_embeddings(embedder.texts(prompts, desc="class prompts"), len(split.class_names))
    videos = embedder.videos(split.videos, sampling, desc=f"{split.name} videos")
    scores = cosine_scores(videos.features, classes)
    return _classification_result("zero_shot_classification", scores, labels, videos.durations,
                                  len(split.class_names))


def evaluate_multiple_choice(embedder: Embedder, split: BenchmarkSplit, sampling: ClipSampling) -> EvalResult:
    """Accuracy of picking the correct caption among each video's options (MSR-VTT MC: 5 options)."""
    if len(split.answers) != len(split.videos):
        raise ValueError(f"{split.name} {split.split}: multiple choice needs one answer per video")
    per_video = split.video_to_texts
    local_answers = []
    for video, (answer, options) in enumerate(zip(split.answers, per_video)):
        if answer not in options:
            raise ValueError(f"{split.name}: the answer of video {video} is not one of its options")
        local_answers.append(options.index(answer))
    videos = embedder.videos(split.videos, sampling, desc=f"{split.name} videos")
    options = embedder.texts(split.texts, desc="options")
    correct = multiple_choice_correct(multiple_choice_scores(videos.features, options, split.text_to_video),
                                      local_answers)
    metrics = {"accuracy": 100.0 * float(np.mean(correct))}
    return EvalResult("multiple_choice", metrics, {"hit": correct, "duration": videos.durations.numpy()},
                      {"videos": len(split.videos), "options": len(split.texts)})


def evaluate_classifier(embedder: Embedder, classifier: VideoClassifier, split: BenchmarkSplit,
                        sampling: ClipSampling) -> EvalResult:
    """A fine-tuned classifier with multi-view testing: the views' logits are averaged (Kinetics 5x3, SSv2 2x3).

    The embedder must wrap `classifier.model`; its view embeddings are cached like any other.
    """
    if embedder.model is not classifier.model:
        raise ValueError("the embedder must wrap the classifier's own model")
    labels = _labels(split)
    videos = embedder.videos(split.videos, sampling, desc=f"{split.name} videos")
    classifier.to(embedder.device)
    with evaluating(classifier):
        logits = average_view_logits(classifier.logits_of_features(videos.features.to(embedder.device))).float().cpu()
    return _classification_result("classification", logits, labels, videos.durations, len(split.class_names))

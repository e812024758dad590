"""Zero-shot classification and multiple choice from the two towers' embeddings, with no training.

Classification (CLIP's recipe): each class name is put in every prompt template, the L2-normalised text embeddings
of a class are averaged and re-normalised, and a video takes the class whose embedding is most similar.
Multiple choice (MSR-VTT MC): a video takes the option caption most similar to it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# CLIP's 28 prompt templates for Kinetics-700 (openai/CLIP, data/prompts.md), used for Kinetics-400 in the paper.
KINETICS_TEMPLATES: tuple[str, ...] = tuple(
    f"a {noun} of {person}{{}}."
    for noun in ("photo", "video", "example", "demonstration")
    for person in ("", "a person ", "a person using ", "a person doing ", "a person during ",
                   "a person performing ", "a person practicing ")
)
PLAIN_TEMPLATES: tuple[str, ...] = ("{}",)
TEMPLATE_SETS = {"kinetics": KINETICS_TEMPLATES, "none": PLAIN_TEMPLATES}


def prompts_for(class_names: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Class-major prompts: all templates of class 0, then of class 1, ..."""
    for template in templates:
        if template.count("{}") != 1:
            raise ValueError(f"a prompt template holds exactly one '{{}}' for the class name, got {template!r}")
    return [template.format(name) for name in class_names for template in templates]


def class_embeddings(text_features: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class-major prompt embeddings [C * templates, D] -> normalised mean per class [C, D]."""
    if len(text_features) % num_classes:
        raise ValueError(f"{len(text_features)} prompt embeddings do not split into {num_classes} classes")
    per_class = F.normalize(text_features.float(), dim=-1).view(num_classes, -1, text_features.shape[-1])
    return F.normalize(per_class.mean(dim=1), dim=-1)


def cosine_scores(video_features: torch.Tensor, class_features: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of videos [N, D] (or view embeddings [N, V, D], averaged after normalising) and classes."""
    video = F.normalize(video_features.float(), dim=-1)
    if video.ndim == 3:
        video = F.normalize(video.mean(dim=1), dim=-1)
    return video @ F.normalize(class_features.float(), dim=-1).T


def multiple_choice_scores(video_features: torch.Tensor, option_features: torch.Tensor,
                           option_to_video: Sequence[int]) -> list[np.ndarray]:
    """Per video, the cosine similarity of each of its options, in option order."""
    scores = cosine_scores(video_features, option_features)  # [videos, options]
    owners = np.asarray(option_to_video)
    return [scores[v, torch.as_tensor(np.flatnonzero(owners == v))].numpy() for v in range(len(scores))]


def multiple_choice_correct(option_scores: Sequence[np.ndarray], answers: Sequence[int]) -> np.ndarray:
    """Correct iff the answer strictly beats every other option (a tie with a wrong option counts as wrong)."""
    out = []
    for scores, answer in zip(option_scores, answers):
        if not 0 <= answer < len(scores):
            raise ValueError(f"answer index {answer} outside the {len(scores)} options")
        out.append(bool(np.sum(scores >= scores[answer]) == 1))
    return np.asarray(out, dtype=bool)

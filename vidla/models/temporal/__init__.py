"""Temporal designs: how a CLIP vision tower turns T frames into one video embedding.

Every design has one interface (`TemporalDesign`): built from the vision config, the output dimension and
the frame count; called with the CLIP `VisionTransformer` and a video [B, T, 3, H, W]; returns [B, D]
unnormalised video features. Designs reuse the vision tower's own blocks and attention primitive.
"""

from __future__ import annotations

from typing import Any

from vidla.models.config import VisionConfig
from vidla.models.temporal.base import TemporalDesign
from vidla.models.temporal.meanpool import MeanPool

TEMPORAL_DESIGNS: dict[str, type[TemporalDesign]] = {
    "meanpool": MeanPool,
}


def create_temporal(name: str, vision: VisionConfig, num_frames: int, options: dict[str, Any]) -> TemporalDesign:
    if name not in TEMPORAL_DESIGNS:
        raise ValueError(f"unknown temporal design {name!r}; known: {', '.join(sorted(TEMPORAL_DESIGNS))}")
    return TEMPORAL_DESIGNS[name](vision, num_frames, **options)


__all__ = ["TEMPORAL_DESIGNS", "TemporalDesign", "create_temporal"]

"""Temporal designs: how a CLIP vision tower turns T frames into one video embedding.

Every design has one interface (`TemporalDesign`): built from the vision config, the frame count and its
options; called with the CLIP `VisionTransformer` and a video [B, T, 3, H, W]; returns [B, D] unnormalised
video features. Designs hold only their new parameters and run the tower's own blocks.
"""

from __future__ import annotations

from typing import Any

from vidla.models.config import VisionConfig
from vidla.models.temporal.base import TemporalDesign
from vidla.models.temporal.hta import HierarchicalTemporalAttention, ProxyTokens, hta_mask
from vidla.models.temporal.meanpool import MeanPool
from vidla.models.temporal.spacetime import DividedSpaceTime, HierarchicalTemporalWindows, JointSpaceTime

TEMPORAL_DESIGNS: dict[str, type[TemporalDesign]] = {
    "meanpool": MeanPool,
    "hta": HierarchicalTemporalAttention,
    "joint": JointSpaceTime,
    "divided": DividedSpaceTime,
    "proxy": ProxyTokens,
    "htwa": HierarchicalTemporalWindows,
}


def create_temporal(name: str, vision: VisionConfig, num_frames: int, options: dict[str, Any]) -> TemporalDesign:
    if name not in TEMPORAL_DESIGNS:
        raise ValueError(f"unknown temporal design {name!r}; known: {', '.join(sorted(TEMPORAL_DESIGNS))}")
    try:
        return TEMPORAL_DESIGNS[name](vision, num_frames, **options)
    except TypeError as e:
        raise ValueError(f"temporal design {name!r}: {e}") from e


__all__ = ["TEMPORAL_DESIGNS", "TemporalDesign", "create_temporal", "hta_mask"]

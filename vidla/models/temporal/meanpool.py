from __future__ import annotations

import torch

from vidla.models.clip import VisionTransformer
from vidla.models.temporal.base import TemporalDesign


class MeanPool(TemporalDesign):
    """Per-frame CLIP, video feature = mean of the frame features (CLIP4Clip's meanP). The cost floor."""

    def forward(self, vit: VisionTransformer, video: torch.Tensor) -> torch.Tensor:
        batch, frames = video.shape[:2]
        features = vit(video.flatten(0, 1))
        return features.unflatten(0, (batch, frames)).mean(dim=1)

from __future__ import annotations

import torch
from torch import nn

from vidla.models.clip import VisionTransformer
from vidla.models.config import VisionConfig


class TemporalDesign(nn.Module):
    """Base of the temporal designs. Subclasses hold only their new parameters; CLIP's stay in the tower."""

    def __init__(self, vision: VisionConfig, num_frames: int):
        super().__init__()
        self.vision_config = vision
        self.num_frames = num_frames

    def forward(self, vit: VisionTransformer, video: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] CLIP-normalised frames -> [B, D] unnormalised video features."""
        raise NotImplementedError

    def init_from_clip(self, vit: VisionTransformer) -> None:
        """Initialises the new parameters from the (loaded) CLIP tower, where the design copies CLIP weights."""

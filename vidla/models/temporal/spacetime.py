"""Space-time attention designs measured against HTA: joint (ViViT), divided (TimeSformer) and LF-VILA's
hierarchical temporal windows. They run CLIP's own blocks; only the token pattern changes."""

from __future__ import annotations

import math

import torch
from torch import nn

from vidla.models.clip import VisionTransformer
from vidla.models.config import VisionConfig
from vidla.models.temporal.base import TemporalDesign
from vidla.models.temporal.layers import TemporalAttention, TemporalPositions, run_layer


class JointSpaceTime(TemporalDesign):
    """One video [CLS] and all T*N patches attend to each other in every layer (cost grows with (T*N)^2)."""

    frame_has_cls = False

    def __init__(self, vision: VisionConfig, num_frames: int):
        super().__init__(vision, num_frames)
        self.positions = TemporalPositions(num_frames, vision.width)

    def forward(self, vit: VisionTransformer, video: torch.Tensor) -> torch.Tensor:
        batch, frames = video.shape[:2]
        patches = vit.embed_patches(video.flatten(0, 1)).unflatten(0, (batch, frames))
        patches = patches + self.positions(frames).to(patches.dtype)[None, :, None]
        x = torch.cat([vit.cls_token(batch, patches.dtype), patches.flatten(1, 2)], dim=1)
        x = vit.transformer(vit.ln_pre(x))
        return vit.project(x[:, 0])


class DividedSpaceTime(TemporalDesign):
    """TimeSformer: per layer, attention along time (new weights, identity at start), then CLIP's spatial
    attention within each frame (each frame keeps its [CLS]) and MLP. Video = mean of the frame embeddings.

    `windows` (one per layer) restricts the temporal attention to blocks of that many frames; 0 = all frames.
    """

    def __init__(self, vision: VisionConfig, num_frames: int, windows: list[int] | None = None):
        super().__init__(vision, num_frames)
        self.windows = list(windows) if windows is not None else [0] * vision.layers
        if len(self.windows) != vision.layers:
            raise ValueError(f"need one temporal window per layer ({vision.layers}), got {len(self.windows)}")
        self.positions = TemporalPositions(num_frames, vision.width)
        self.temporal_layers = nn.ModuleList(
            [TemporalAttention(vision.width, vision.heads, vision.layer_norm_eps) for _ in range(vision.layers)])

    def init_from_clip(self, vit: VisionTransformer) -> None:
        for layer, block in zip(self.temporal_layers, vit.transformer.resblocks):
            layer.init_from_block(block)

    def windows_for(self, frames: int) -> list[int]:
        """The temporal window of each layer for clips of `frames` frames (0 = all frames)."""
        return self.windows

    def forward(self, vit: VisionTransformer, video: torch.Tensor) -> torch.Tensor:
        batch, frames = video.shape[:2]
        patches = vit.embed_patches(video.flatten(0, 1))
        cls = vit.cls_token(patches.shape[0], patches.dtype)
        x = vit.ln_pre(torch.cat([cls, patches], dim=1))  # [B*T, 1+N, W], per-frame CLIP tokens
        positions = self.positions(frames).to(x.dtype)
        windows = self.windows_for(frames)
        for i, block in enumerate(vit.transformer.resblocks):
            x = run_layer(vit.transformer.grad_checkpointing, self._layer, i, block, x, batch, positions, windows[i])
        return vit.project(x[:, 0]).unflatten(0, (batch, frames)).mean(dim=1)

    def _layer(self, i: int, block: nn.Module, x: torch.Tensor, batch: int, positions: torch.Tensor,
               window: int) -> torch.Tensor:
        frames = positions.shape[0]
        patches = x[:, 1:].unflatten(0, (batch, frames))  # [B, T, N, W]
        if i == 0:  # frame positions enter with the first temporal step, as TimeSformer's time embedding
            patches = patches + positions[None, :, None]
        patches = self.temporal_layers[i](patches, window)
        return block(torch.cat([x[:, :1], patches.flatten(0, 1)], dim=1))


# LF-VILA's Swin-3D stages (pretrain_stage1.yaml): temporal windows of 2, 4, 8, 16, 16 and 32 frames over its
# 32-frame input, as fractions of the input; windows never shift in time (temporal_no_shifting).
LF_VILA_STAGE_WINDOWS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1 / 2, 1)


def lf_vila_windows(layers: int, frames: int) -> list[int]:
    """The temporal window (frames; 0 = all) of each of `layers` layers for `frames`-frame clips: LF-VILA's six
    stages spread evenly over the layers (the first layer in the first stage, the last in the last), each stage's
    window its share of the frames, rounded to the nearest divisor of `frames` that is at least 2, so windows
    tile the clip exactly (a 1-frame window would attend to nothing; a window of all frames is written 0)."""
    divisors = [d for d in range(2, frames + 1) if frames % d == 0] or [frames]
    windows = []
    stages = len(LF_VILA_STAGE_WINDOWS)
    for i in range(layers):
        # even spread; a tower with fewer layers than stages skips stages evenly, keeping the first and last
        stage = i * stages // layers if layers >= stages else math.floor(i * (stages - 1) / max(1, layers - 1) + 0.5)
        share = LF_VILA_STAGE_WINDOWS[stage] * frames
        window = min(divisors, key=lambda d: (abs(math.log(d / share)), d))
        windows.append(0 if window >= frames else window)
    return windows


class HierarchicalTemporalWindows(DividedSpaceTime):
    """LF-VILA's hierarchical temporal window attention on the CLIP backbone: divided space-time attention
    whose temporal attention sees windows of frames that grow with depth."""

    def __init__(self, vision: VisionConfig, num_frames: int, windows: list[int] | None = None):
        super().__init__(vision, num_frames, windows or lf_vila_windows(vision.layers, num_frames))
        self.fixed_windows = windows is not None

    def windows_for(self, frames: int) -> list[int]:
        # the schedule follows the clip's frame count (a model built for 12 frames may run on 32)
        return self.windows if self.fixed_windows else lf_vila_windows(len(self.windows), frames)

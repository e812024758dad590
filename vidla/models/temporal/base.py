from __future__ import annotations

import torch
from torch import nn

from vidla.models.clip import VisionTransformer
from vidla.models.config import VisionConfig


class TemporalDesign(nn.Module):
    """Base of the temporal designs. Subclasses hold only their new parameters; CLIP's stay in the tower."""

    # How a frame is summarised in a block's output: by its own [CLS] (per-frame designs: [B*T, 1+N, W]) or by
    # the mean of its patches (designs with one sequence per video whose patches end it: [B, G+T*N, W]).
    frame_has_cls: bool = True

    def __init__(self, vision: VisionConfig, num_frames: int):
        super().__init__()
        self.vision_config = vision
        self.num_frames = num_frames

    def forward(self, vit: VisionTransformer, video: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] CLIP-normalised frames -> [B, D] unnormalised video features."""
        raise NotImplementedError

    def init_from_clip(self, vit: VisionTransformer) -> None:
        """Initialises the new parameters from the (loaded) CLIP tower, where the design copies CLIP weights."""

    def frame_states(self, vit: VisionTransformer, hidden: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        """One block's output -> [B, T, width], one state per frame."""
        if self.frame_has_cls:
            return hidden[:, 0].unflatten(0, (batch, frames))
        return hidden[:, hidden.shape[1] - frames * vit.num_patches:].unflatten(1, (frames, -1)).mean(dim=2)

    def forward_with_clips(self, vit: VisionTransformer, video: torch.Tensor, clips: int,
                           layer: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass over a window of `clips` consecutive clips of equal frame counts -> the video features
        [B, D] and per-clip features [B, clips, D]: the frames' states after block `layer` (1-based; None =
        the last), each through ln_post and the projection, averaged over the clip's frames (SPEC 5.1)."""
        batch, frames = video.shape[:2]
        layers = vit.transformer.layers
        layer = layers if layer is None else layer
        if clips < 1 or frames % clips:
            raise ValueError(f"{frames} frames cannot be cut into {clips} clips of equal length")
        if not 1 <= layer <= layers:
            raise ValueError(f"clip features are read after a block 1..{layers}, got layer {layer}")
        captured: list[torch.Tensor] = []
        # the first call is the forward pass; activation checkpointing may call the block again in backward
        hook = vit.transformer.resblocks[layer - 1].register_forward_hook(
            lambda module, inputs, output: captured.append(output) if not captured else None)
        try:
            video_features = self(vit, video)
        finally:
            hook.remove()
        per_frame = vit.project(self.frame_states(vit, captured[0], batch, frames))  # [B, T, D]
        return video_features, per_frame.unflatten(1, (clips, frames // clips)).mean(dim=2)

"""The VidLA two-tower model: CLIP's text tower and a CLIP vision tower extended with a temporal design."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from vidla.models.clip import TextTransformer, VisionTransformer
from vidla.models.config import ModelConfig
from vidla.models.frame_selection import FrameSelector
from vidla.models.temporal import create_temporal
from vidla.models.tokenizer import CLIPTokenizer

class VidLA(nn.Module):
    """Two towers sharing an embedding space.

    Parameters: `visual.*` (CLIP ViT), `text.*` (CLIP text transformer), `temporal.*` (the temporal design's
    new parameters), `logit_scale`, and `frame_selector.*` when the model selects key frames
    (`config.frame_selection`).
    """

    def __init__(self, config: ModelConfig, tokenizer: CLIPTokenizer | None = None):
        super().__init__()
        self.config = config
        self.visual = VisionTransformer(config.vision, config.embed_dim)
        self.text = TextTransformer(config.text, config.embed_dim)
        self.temporal = create_temporal(config.temporal, config.vision, config.num_frames,
                                        config.temporal_options)
        self.temporal.init_from_clip(self.visual)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init)))
        self.tokenizer = tokenizer or CLIPTokenizer.default(config.text.context_length)
        self.frame_selector = (FrameSelector(config.frame_selection, config.vision, config.embed_dim)
                               if config.frame_selection else None)

    @property
    def image_size(self) -> int:
        return self.config.vision.image_size

    @property
    def num_frames(self) -> int:
        return self.config.num_frames

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        self.visual.transformer.grad_checkpointing = enabled
        self.text.transformer.grad_checkpointing = enabled

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        return self.tokenizer(texts, self.config.text.context_length).to(self.device)

    def encode_text(self, texts: str | Sequence[str] | torch.Tensor) -> torch.Tensor:
        """Texts (or token ids [B, L]) -> [B, D] unnormalised text features."""
        token_ids = texts if isinstance(texts, torch.Tensor) else self.tokenize(texts)
        return self.text(token_ids.to(self.device))

    def encode_video(self, video: torch.Tensor, text: str | Sequence[str] | torch.Tensor | None = None) -> torch.Tensor:
        """[B, T, 3, H, W] frames normalised with CLIP's mean and std -> [B, D] unnormalised video features.

        With frame selection, the T frames are candidates and the tower encodes the K selected ones; `text`
        (one text, B texts, or their [1 or B, D] features) guides the selection, e.g. to re-rank a short list."""
        video = _check_video(video)
        if self.frame_selector is not None:
            video, _ = self.select_frames(video, text)
        elif text is not None:
            raise ValueError("a text guides frame selection, and this model has none (config.frame_selection)")
        return self.encode_frames(video)

    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] -> [B, D]: the tower on exactly these frames, without frame selection."""
        return self.temporal(self.visual, _check_video(video).to(self.device))

    def select_frames(self, video: torch.Tensor, text: str | Sequence[str] | torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T, 3, H, W] candidates -> ([B, K, 3, H, W] selected frames, [B, K] their indices)."""
        if self.frame_selector is None:
            raise ValueError("this model has no frame selector (create it with frame_selection=...)")
        if text is not None and not (isinstance(text, torch.Tensor) and text.is_floating_point()):
            text = self.encode_text(text)  # strings or token ids
        return self.frame_selector(self.visual, _check_video(video).to(self.device), text)

    def encode_video_clips(self, video: torch.Tensor, clips: int,
                           layer: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A window of `clips` consecutive equal-length clips [B, T, 3, H, W] -> video features [B, D] and
        per-clip features [B, clips, D], from one pass of the video tower (clip features pooled from the frames'
        states after block `layer`, the last by default; LF-VILA's MTC loss trains them)."""
        if video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"expected video of shape [B, T, 3, H, W], got {tuple(video.shape)}")
        return self.temporal.forward_with_clips(self.visual, video.to(self.device), clips, layer)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] CLIP-normalised images -> [B, D] image features of the plain CLIP vision tower."""
        return self.visual(images.to(self.device))

    def forward(self, video: torch.Tensor, texts: Sequence[str] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Similarity logits (video x text, and its transpose), scaled by the temperature."""
        v = nn.functional.normalize(self.encode_video(video), dim=-1)
        t = nn.functional.normalize(self.encode_text(texts), dim=-1)
        logits = self.logit_scale.clamp(max=math.log(100)).exp() * v @ t.T
        return logits, logits.T


def _check_video(video: torch.Tensor) -> torch.Tensor:
    if video.ndim == 4:
        video = video[:, None]
    if video.ndim != 5 or video.shape[2] != 3:
        raise ValueError(f"expected video of shape [B, T, 3, H, W], got {tuple(video.shape)}")
    return video

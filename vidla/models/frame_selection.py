"""Key-frame selection (ViLA's Frame-Prompter, SPEC 5.2), done as the paper describes it.

T candidate frames are cut into K equal segments; a small scorer rates every frame from cheap features (CLIP's
patch embedding `conv1` average-pooled to a small grid, or the pooled pixels: neither runs the transformer) and,
when a text is given, from the text embedding too; one frame per segment goes on to the expensive tower.

Training picks with hard Gumbel-softmax and straight-through gradients: the K frames are the one-hot weighted
sums of their segment's candidates, so the contrastive and distillation losses reach the scorer through the
weights. Inference picks the argmax: deterministic, no noise (ViLA's released code still samples at test time).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vidla.models.clip import VisionTransformer
from vidla.models.config import FrameSelectionConfig, VisionConfig
from vidla.models.transformer import LayerNorm

FEATURES = ("patch", "pixels")


class FrameSelector(nn.Module):
    """Scores T candidate frames and picks one per segment.

    Score of frame t: w . h_t (+ <h_t, q(text)> / sqrt(hidden) with a text), where h_t = MLP(LN(cheap
    features of frame t)) and q a linear map of the L2-normalised text embedding. A zero text gives exactly the
    text-free score, which is how training mixes text-guided and text-free selection.
    """

    def __init__(self, config: FrameSelectionConfig, vision: VisionConfig, embed_dim: int):
        super().__init__()
        if config.features not in FEATURES:
            raise ValueError(f"frame_selection.features must be one of {FEATURES}, got {config.features!r}")
        if config.segments < 1 or config.grid < 1 or config.hidden < 1:
            raise ValueError(f"frame_selection: segments, grid and hidden must be positive ({config})")
        self.config = config
        channels = vision.width if config.features == "patch" else 3
        in_dim = channels * config.grid**2
        self.frame_mlp = nn.Sequential(LayerNorm(in_dim), nn.Linear(in_dim, config.hidden), nn.GELU(),
                                       nn.Linear(config.hidden, config.hidden))
        self.score = nn.Linear(config.hidden, 1, bias=False)  # a shift would not change a softmax
        self.text_query = nn.Linear(embed_dim, config.hidden, bias=False)
        # zero: the selector starts text-free, and the text term grows only where the text helps (a random
        # start adds text-dependent noise to every selection; measured in docs/benchmarks.md)
        nn.init.zeros_(self.text_query.weight)
        # Gumbel-softmax temperature; the training loop anneals it (not a weight: not saved)
        self.register_buffer("temperature", torch.tensor(1.0), persistent=False)

    @property
    def segments(self) -> int:
        return self.config.segments

    @torch.no_grad()
    def frame_features(self, vit: VisionTransformer, video: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] -> [B, T, F] cheap per-frame features (no gradient: the tower is not trained by them)."""
        images = video.flatten(0, 1)
        if self.config.features == "patch":
            images = vit.conv1(images.to(vit.conv1.weight.dtype))  # [B*T, width, H/P, W/P]
        pooled = F.adaptive_avg_pool2d(images, self.config.grid).flatten(1)
        return pooled.unflatten(0, video.shape[:2]).to(self.score.weight.dtype)

    def logits(self, features: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T, F] frame features (+ [B or 1, D] text features) -> [B, K, T/K] per-segment frame logits."""
        batch, frames = features.shape[:2]
        hidden = self.frame_mlp(features)
        logits = self.score(hidden).squeeze(-1)
        if text is not None:
            query = self.text_query(F.normalize(text.to(hidden.dtype), dim=-1))  # zero text -> zero query
            logits = logits + (hidden * query[:, None]).sum(-1) / math.sqrt(hidden.shape[-1])
        return logits.view(batch, self.segments, frames // self.segments)

    def forward(self, vit: VisionTransformer, video: torch.Tensor,
                text: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T, 3, H, W] candidates -> ([B, K, 3, H, W] selected frames, [B, K] their indices in 0..T-1)."""
        batch, frames = video.shape[:2]
        if frames % self.segments:
            raise ValueError(f"frame selection cuts the {frames} candidate frames into {self.segments} segments: "
                             f"give a multiple of {self.segments} frames")
        logits = self.logits(self.frame_features(vit, video), text)
        per_segment = logits.shape[-1]
        offsets = torch.arange(self.segments, device=video.device) * per_segment
        if self.training:
            # hard one-hot forward, softmax gradient backward (straight-through)
            weights = F.gumbel_softmax(logits.float(), tau=float(self.temperature), hard=True, dim=-1)
            segments = video.unflatten(1, (self.segments, per_segment))  # [B, K, S, 3, H, W]
            selected = torch.einsum("bks,bks...->bk...", weights.to(video.dtype), segments)
            return selected, weights.argmax(-1) + offsets
        indices = logits.argmax(-1) + offsets  # deterministic at inference
        return video[torch.arange(batch, device=video.device)[:, None], indices], indices


def annealed_temperature(step: int, total_steps: int, start: float = 1.0, end: float = 0.01) -> float:
    """Exponential decay from `start` at step 0 to `end` at the last step (ViLA anneals 1 -> 0.01)."""
    if total_steps <= 1:
        return end
    return start * (end / start) ** (min(step, total_steps - 1) / (total_steps - 1))

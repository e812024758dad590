"""Classification fine-tuning support: a linear head on the video tower, and multi-view testing.

    classifier = VideoClassifier(model, num_classes=400)             # trained by the training code
    logits = classifier(video)                                       # video [B, T, 3, S, S] -> [B, 400]
    logits = classifier(views)                                       # views [B, V, T, 3, S, S] -> view-averaged
    result = evaluate_classifier(classifier, split, KINETICS_VIEWS)  # top-1/top-5 on a benchmark split

Test views (SPEC section 2.1): Kinetics-400 5x3 (5 dense clips spread over the video x 3 spatial crops), SSv2 2x3
(2 TSN uniform clips x 3 crops); the prediction averages the views' logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vidla.evaluate.embed import ClipSampling

# Fine-tuned classification protocols (paper: 16 frames).
KINETICS_VIEWS = ClipSampling(num_frames=16, method="dense", temporal_views=5, spatial_views=3, stride=4)
SSV2_VIEWS = ClipSampling(num_frames=16, method="uniform", temporal_views=2, spatial_views=3)


class VideoClassifier(nn.Module):
    """A linear layer on the video embedding.

    normalize: classify the L2-normalised embedding (a cosine classifier, which `init_from_text` can start at the
    zero-shot classifier); otherwise the raw `encode_video` output.
    """

    def __init__(self, model: nn.Module, num_classes: int, dropout: float = 0.0, normalize: bool = True):
        super().__init__()
        self.model, self.normalize = model, normalize
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(model.config.embed_dim, num_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def init_from_text(self, class_features: torch.Tensor, scale: float | None = None) -> None:
        """Starts the head at zero-shot classification: weights = normalised class text embeddings x scale.

        scale: the logit scale (default the model's temperature, as CLIP's zero-shot logits use).
        """
        if not self.normalize:
            raise ValueError("init_from_text needs normalize=True (a cosine classifier)")
        if scale is None:
            scale = float(self.model.logit_scale.detach().clamp(max=math.log(100)).exp())
        with torch.no_grad():
            self.head.weight.copy_(F.normalize(class_features.float(), dim=-1) * scale)
            self.head.bias.zero_()

    def logits_of_features(self, features: torch.Tensor) -> torch.Tensor:
        """Video embeddings [..., D] -> logits [..., C]."""
        features = F.normalize(features, dim=-1) if self.normalize else features
        return self.head(self.dropout(features))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, S, S] -> [B, C]; [B, V, T, 3, S, S] (test views) -> view-averaged logits [B, C]."""
        if video.ndim == 6:
            return multi_view_logits(self, video)
        return self.logits_of_features(self.model.encode_video(video))


def multi_view_logits(classify: nn.Module, views: torch.Tensor) -> torch.Tensor:
    """Average of the logits of each view: views [B, V, T, 3, S, S], `classify` maps [N, T, 3, S, S] -> [N, C]."""
    batch, num_views = views.shape[:2]
    logits = classify(views.flatten(0, 1))
    return logits.view(batch, num_views, -1).mean(dim=1)


def average_view_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-view logits [N, V, C] -> [N, C] (the same average, for logits computed from cached view embeddings)."""
    return logits.mean(dim=1)

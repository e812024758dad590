"""VidLA's objective: symmetric info-NCE between each clip and each of its texts (caption and subtitle in
pre-training, one text in fine-tuning), summed over text kinds, with one shared learnable temperature and
negatives from the whole global batch (SPEC 2)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vidla.train.distributed import World, gather_with_grad

MAX_LOGIT_SCALE = math.log(100)  # CLIP clamps the temperature at 1/100


def symmetric_info_nce(video_rows: torch.Tensor, text_rows: torch.Tensor, all_video: torch.Tensor,
                       all_text: torch.Tensor, scale: torch.Tensor, offset: int) -> torch.Tensor:
    """Mean of the video->text and text->video cross-entropies for this process's rows.

    video_rows/text_rows: [b, D] local normalised features; all_video/all_text: [B, D] the global batch;
    the positive of local row i is global column offset + i."""
    labels = torch.arange(video_rows.shape[0], device=video_rows.device) + offset
    video_to_text = scale * video_rows @ all_text.T
    text_to_video = scale * text_rows @ all_video.T
    return (F.cross_entropy(video_to_text, labels) + F.cross_entropy(text_to_video, labels)) / 2


class ContrastiveLoss(torch.nn.Module):
    """Sum over text kinds of the symmetric info-NCE of (video, text of that kind).

    Global mode (default): every rank computes the loss of the whole global batch from gathered features, so the
    loss and, after DDP's gradient averaging, the gradients equal one process's on the same global batch.
    Local mode (`local_loss=True`): each rank computes only its own rows against all columns (memory O(b x B)
    instead of O(B x B)); the mean over ranks is the same loss and the averaged gradients are the same.
    """

    def __init__(self, world: World | None = None, local_loss: bool = False):
        super().__init__()
        self.world = world or World()
        self.local_loss = local_loss

    def forward(self, video: torch.Tensor, texts: dict[str, torch.Tensor],
                logit_scale: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        scale = logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        video = F.normalize(video, dim=-1)
        all_video = gather_with_grad(video, self.world)
        per_kind = {}
        for kind, text in texts.items():
            text = F.normalize(text, dim=-1)
            all_text = gather_with_grad(text, self.world)
            if self.local_loss:
                offset = self.world.rank * video.shape[0]
                per_kind[kind] = symmetric_info_nce(video, text, all_video, all_text, scale, offset)
            else:
                per_kind[kind] = symmetric_info_nce(all_video, all_text, all_video, all_text, scale, 0)
        total = torch.stack(list(per_kind.values())).sum()
        return total, per_kind

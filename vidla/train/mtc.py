"""LF-VILA's multimodal temporal contrastive (MTC) loss (SPEC 5.1): which sentence goes with which part of a
long video.

A sample is a video window cut into M consecutive clips, each with its sentence. Per sample, `anchors` clip
indices are drawn in one modality; the candidates are `candidates` clip indices of the same sample in the other
modality plus one clip of each of the `others` preceding samples of the (global) batch. The target is the own
candidate temporally closest to the anchor (clips are consecutive, so time = clip index); an anchor equally
close to two own candidates has no target (label -100, ignored). Cross-entropy text->video plus video->text
(the same indices both ways), on normalised features at a fixed temperature.

Differences from the released code (`ct_time_loss` in microsoft/XPretrain LF-VILA), both deliberate:
- the draws come from a generator seeded per step, so every rank draws the same indices for the global batch
  and k processes compute exactly one process's loss (the released code draws per process);
- the other-sample negatives are the 1st..K-th preceding samples; the released code's rolls start at 0, so
  its first "other" negative is a clip of the sample itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidla.train.distributed import World, gather_with_grad

IGNORE = -100


@dataclass(frozen=True)
class MTCDraw:
    """The random choices of one MTC loss evaluation, for a batch of B samples of M clips."""

    anchors: torch.Tensor     # [B, A] distinct clip indices of each sample (anchors, in both directions)
    candidates: torch.Tensor  # [B, C] distinct clip indices of the same sample (own candidates)
    other: torch.Tensor       # [B] the clip each sample offers as a negative to the samples after it


def draw(batch: int, clips: int, anchors: int = 2, candidates: int = 2,
         generator: torch.Generator | None = None) -> MTCDraw:
    """Anchor, candidate and other-negative clip indices, as LF-VILA draws them (independent permutations)."""
    if anchors > clips or candidates > clips:
        raise ValueError(f"MTC draws {anchors} anchors and {candidates} candidates from {clips} clips per sample")

    def firsts(count: int) -> torch.Tensor:
        return torch.stack([torch.randperm(clips, generator=generator)[:count] for _ in range(batch)])

    return MTCDraw(firsts(anchors), firsts(candidates), firsts(1)[:, 0])


def temporal_targets(anchors: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """[B, A] index of the own candidate closest in time to each anchor; IGNORE where two are equally close."""
    distance = (candidates[:, None, :] - anchors[:, :, None]).abs()  # [B, A, C]
    closest = distance.min(dim=-1, keepdim=True).values
    tied = (distance == closest).sum(dim=-1) > 1
    return distance.argmin(dim=-1).masked_fill(tied, IGNORE)


def _pick(features: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """[B, M, D] features, [B, K] clip indices -> [B, K, D]."""
    return torch.gather(features, 1, indices[..., None].expand(-1, -1, features.shape[-1]))


def _direction(anchor_side: torch.Tensor, candidate_side: torch.Tensor, picks: MTCDraw, others: int,
               rows: slice) -> torch.Tensor:
    """Logits [b, A, C + others] of this process's rows: anchors of one modality against candidates of the
    other (own clips first, then one clip from each of the `others` preceding samples)."""
    anchor = _pick(anchor_side[rows], picks.anchors[rows])
    own = _pick(candidate_side, picks.candidates)[rows]
    offered = candidate_side[torch.arange(candidate_side.shape[0], device=candidate_side.device), picks.other]
    foreign = [offered.roll(shift, dims=0)[rows] for shift in range(1, others + 1)]  # sample i gets i-shift's
    pool = torch.cat([own, *(f[:, None] for f in foreign)], dim=1)
    return anchor @ pool.transpose(1, 2)


def mtc_loss(video_clips: torch.Tensor, text_clips: torch.Tensor, picks: MTCDraw, temperature: float = 0.05,
             others: int = 3, rows: slice = slice(None), normaliser: int | None = None) -> torch.Tensor:
    """CE(text->video) + CE(video->text), each the mean over the anchors that have a target.

    video_clips, text_clips: [B, M, D] clip features of the whole (global) batch; `picks` drawn for B samples.
    rows: the samples whose anchors this process scores (all by default); normaliser: how many valid anchors
    the mean divides by (default: those in `rows`), so that per-process parts of one batch sum to its loss."""
    if video_clips.shape != text_clips.shape or video_clips.ndim != 3:
        raise ValueError(f"MTC needs video and text clip features of one shape [B, M, D], got "
                         f"{tuple(video_clips.shape)} and {tuple(text_clips.shape)}")
    if others >= video_clips.shape[0]:
        raise ValueError(f"MTC takes negatives from {others} other samples but the batch has "
                         f"{video_clips.shape[0]} samples; use a larger batch or fewer other negatives")
    video, text = F.normalize(video_clips, dim=-1), F.normalize(text_clips, dim=-1)
    labels = temporal_targets(picks.anchors, picks.candidates).to(video.device)
    count = normaliser if normaliser is not None else int((labels[rows] != IGNORE).sum())
    labels = labels[rows].flatten()
    total = video.new_zeros(())
    for anchor_side, candidate_side in ((text, video), (video, text)):
        logits = _direction(anchor_side, candidate_side, picks, others, rows) / temperature
        total = total + F.cross_entropy(logits.flatten(0, 1), labels, ignore_index=IGNORE, reduction="sum")
    return total / max(count, 1)


class MultimodalTemporalContrastive(torch.nn.Module):
    """The MTC term of the training loss, `weight` x mtc_loss, with clip features gathered from every rank.

    Global mode: every rank scores the whole global batch (same loss as one process). Local mode: each rank
    scores its own samples, scaled so that DDP's mean over ranks is the global loss and its gradients."""

    def __init__(self, world: World | None = None, local_loss: bool = False, weight: float = 0.25,
                 temperature: float = 0.05, anchors: int = 2, candidates: int = 2, others: int = 3):
        super().__init__()
        self.world, self.local_loss = world or World(), local_loss
        self.weight, self.temperature = weight, temperature
        self.anchors, self.candidates, self.others = anchors, candidates, others

    def forward(self, video_clips: torch.Tensor, text_clips: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """video_clips, text_clips: this process's [b, M, D]; generator: seeded alike on every rank."""
        all_video = gather_with_grad(video_clips, self.world)
        all_text = gather_with_grad(text_clips, self.world)
        picks = draw(all_video.shape[0], all_video.shape[1], self.anchors, self.candidates, generator)
        if not self.local_loss:
            return self.weight * mtc_loss(all_video, all_text, picks, self.temperature, self.others)
        local = video_clips.shape[0]
        rows = slice(self.world.rank * local, (self.world.rank + 1) * local)
        valid = int((temporal_targets(picks.anchors, picks.candidates) != IGNORE).sum())
        part = mtc_loss(all_video, all_text, picks, self.temperature, self.others, rows, normaliser=valid)
        return self.weight * self.world.size * part

"""Pieces the temporal designs share: frame position embeddings, attention along time, the global-token
attention mask, and its efficient split computation. All attention goes through `transformer.attend`."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidla.models.transformer import Attention, LayerNorm, ResidualAttentionBlock, attend


def run_layer(enabled: bool, fn: Callable[..., torch.Tensor], *args) -> torch.Tensor:
    """Runs one layer, through activation checkpointing when `enabled` and gradients are on."""
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class TemporalPositions(nn.Module):
    """A learnable embedding per frame index, zero-initialised so the start equals CLIP; linearly
    interpolated when a clip has another frame count than the table."""

    def __init__(self, num_frames: int, width: int):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(num_frames, width))

    def forward(self, frames: int) -> torch.Tensor:
        return resample_frames(self.table, frames)


def resample_frames(table: torch.Tensor, frames: int) -> torch.Tensor:
    """Linearly resamples a [T0, W] per-frame table to [frames, W]; the first and last rows are kept."""
    if frames == table.shape[0]:
        return table
    if table.shape[0] == 1:
        return table.expand(frames, -1)
    return F.interpolate(table.T[None], size=frames, mode="linear", align_corners=True)[0].T


class TemporalAttention(nn.Module):
    """Attention along time at each spatial position: Z + MHSA(LN(Z)) over the T patches at the same place.

    Starts as the identity (output projection zeroed) with Q/K/V and LN copied from a CLIP block, so gradients
    reach every weight from the first step. `window` > 0 restricts attention to blocks of `window` frames
    (LF-VILA's temporal windows).
    """

    def __init__(self, width: int, heads: int, eps: float = 1e-5):
        super().__init__()
        self.ln = LayerNorm(width, eps=eps)
        self.attn = Attention(width, heads)

    def init_from_block(self, block: ResidualAttentionBlock) -> None:
        with torch.no_grad():
            self.ln.load_state_dict(block.ln_1.state_dict())
            self.attn.in_proj_weight.copy_(block.attn.in_proj_weight)
            self.attn.in_proj_bias.copy_(block.attn.in_proj_bias)
            nn.init.zeros_(self.attn.out_proj.weight)
            nn.init.zeros_(self.attn.out_proj.bias)

    def forward(self, patches: torch.Tensor, window: int = 0) -> torch.Tensor:
        """[B, T, N, W] -> [B, T, N, W]."""
        batch, frames, positions, width = patches.shape
        # [B*N, T, W]: one short sequence per spatial position, 4-D for SDPA's fused kernels
        x = patches.transpose(1, 2).reshape(batch * positions, frames, width)
        mask = window_mask(frames, window, patches.device) if 0 < window < frames else None
        out = self.attn(self.ln(x), mask).view(batch, positions, frames, width).transpose(1, 2)
        return patches + out


def window_mask(frames: int, window: int, device: torch.device | None = None) -> torch.Tensor:
    """[T, T] boolean: frames attend within their block of `window` consecutive frames."""
    block = torch.arange(frames, device=device) // window
    return block[:, None] == block[None, :]


# ----------------------------------------------------------------------------------------------------------
# Global-token attention. Sequence: G global tokens ([CLS], [MST], proxies) then T*N patches (frame-major).
# Patches attend to the patches of their own frame and to a fixed subset of the global tokens; each global
# token has its own row of the mask. That structure is what makes the split computation possible.

def global_query_mask(global_rows: torch.Tensor, num_global: int, patches: int) -> torch.Tensor:
    """The global tokens' rows over every key, [G, G + T*N]: each frame column repeated for its N patches."""
    return torch.cat([global_rows[:, :num_global],
                      global_rows[:, num_global:].repeat_interleave(patches, dim=1)], dim=1)


def global_token_mask(global_rows: torch.Tensor, patch_sees: torch.Tensor, frames: int,
                      patches: int) -> torch.Tensor:
    """The dense [L, L] boolean mask (True = may attend), L = G + T*N.

    global_rows: [G, G + T] (global keys, then one column per frame); patch_sees: [G] globals patches see.
    """
    rows_global = global_query_mask(global_rows, patch_sees.shape[0], patches)
    frame_of = torch.arange(frames * patches, device=global_rows.device) // patches
    rows_patch = torch.cat([patch_sees[None].expand(frames * patches, -1),
                            frame_of[:, None] == frame_of[None, :]], dim=1)
    return torch.cat([rows_global, rows_patch], dim=0)


def contiguous_run(mask: torch.Tensor) -> slice | None:
    """A 1-D boolean mask as a slice when its True entries are one contiguous run (None otherwise)."""
    index = mask.nonzero().flatten().tolist()
    if not index or index != list(range(index[0], index[-1] + 1)):
        return None
    return slice(index[0], index[-1] + 1)


def dense_global_attention(attn: Attention, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reference path: one masked attention over the whole sequence."""
    return attn(h, mask)


def split_global_attention(attn: Attention, h: torch.Tensor, global_mask: torch.Tensor | None,
                           patch_sees: torch.Tensor, frames: int, seen: slice | None = None) -> torch.Tensor:
    """The same result as `dense_global_attention`, with queries split by kind (SPEC 1.3):
    global queries attend with their mask rows; patch queries attend frame by frame, to their frame's N
    patches plus the global tokens they see, so no (T*N)^2 score matrix is ever formed.

    global_mask: the global tokens' rows over every key (`global_query_mask`; None when all True).
    patch_sees: [G] the global tokens patches see; `seen`, when given, the same as a slice (`contiguous_run`),
    which avoids boolean indexing: that syncs a GPU with the host and breaks torch.compile's graph every layer."""
    num_global = patch_sees.shape[0]
    batch, length, _ = h.shape
    patches = (length - num_global) // frames
    q, k, v = attn.project_qkv(h)  # [B, H, L, d]

    out_global = attend(q[:, :, :num_global], k, v, global_mask)

    def per_frame(x: torch.Tensor) -> torch.Tensor:  # [B, H, T*N, d] -> [B*T, H, N, d]
        return x[:, :, num_global:].unflatten(2, (frames, patches)).transpose(1, 2).flatten(0, 1)

    def seen_globals(x: torch.Tensor) -> torch.Tensor:  # [B, H, G, d] -> [B*T, H, G_seen, d]
        x = x[:, :, :num_global][:, :, patch_sees if seen is None else seen]
        return x[:, None].expand(-1, frames, -1, -1, -1).flatten(0, 1)

    keys = torch.cat([seen_globals(k), per_frame(k)], dim=2)
    values = torch.cat([seen_globals(v), per_frame(v)], dim=2)
    out_patch = attend(per_frame(q), keys, values)  # [B*T, H, N, d]
    out_patch = out_patch.unflatten(0, (batch, frames)).transpose(1, 2).flatten(2, 3)
    return attn.merge_heads(torch.cat([out_global, out_patch], dim=2))

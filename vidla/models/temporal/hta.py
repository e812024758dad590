"""VidLA's hierarchical temporal attention (SPEC 1.1-1.3) and CLIP-ViP's proxy tokens: both put global tokens
in front of the frames' patches, let patches attend within their frame, and read the video from the globals."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from vidla.models.clip import VisionTransformer
from vidla.models.config import VisionConfig
from vidla.models.temporal.base import TemporalDesign
from vidla.models.temporal.layers import (TemporalAttention, TemporalPositions, contiguous_run,
                                          dense_global_attention, global_query_mask, global_token_mask, run_layer,
                                          split_global_attention)

MST_SEES = ("lower_or_equal", "all", "same")


def hta_global_rows(frames: int, levels: int, per_level: int, stride: int, mst_sees: str = "lower_or_equal",
                    hierarchy: bool = True, patch_sees_cls: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask rows of the global tokens [CLS, MST level-major], over (globals, frames); and the globals that
    patches see. [CLS] sees everything; an [MST] of level u sees the [MST] of levels allowed by `mst_sees`
    and the frames t with t mod stride^u == 0 (every frame without `hierarchy`); never the [CLS]."""
    if mst_sees not in MST_SEES:
        raise ValueError(f"mst_sees must be one of {MST_SEES}, got {mst_sees!r}")
    num_mst = levels * per_level
    level = torch.arange(num_mst) // per_level
    if mst_sees == "lower_or_equal":
        mst_to_mst = level[None, :] <= level[:, None]
    elif mst_sees == "same":
        mst_to_mst = level[None, :] == level[:, None]
    else:
        mst_to_mst = torch.ones(num_mst, num_mst, dtype=torch.bool)
    frame = torch.arange(frames)
    mst_to_frames = (frame[None, :] % (stride ** level[:, None]) == 0) if hierarchy else \
        torch.ones(num_mst, frames, dtype=torch.bool)
    mst_rows = torch.cat([torch.zeros(num_mst, 1, dtype=torch.bool), mst_to_mst, mst_to_frames], dim=1)
    cls_row = torch.ones(1, 1 + num_mst + frames, dtype=torch.bool)
    patch_sees = torch.cat([torch.tensor([patch_sees_cls]), torch.ones(num_mst, dtype=torch.bool)])
    return torch.cat([cls_row, mst_rows]), patch_sees


def hta_mask(frames: int, patches: int, levels: int = 3, per_level: int = 4, stride: int = 2,
             **options) -> torch.Tensor:
    """The dense [L, L] attention mask of SPEC 1.2 (True = may attend), L = 1 + U*V + T*N."""
    rows, patch_sees = hta_global_rows(frames, levels, per_level, stride, **options)
    return global_token_mask(rows, patch_sees, frames, patches)


class GlobalTokenDesign(TemporalDesign):
    """Global tokens + frame-local patches through CLIP's blocks, optionally with attention along time
    before every block. Subclasses define the global tokens, their mask rows and the read-out."""

    frame_has_cls = False

    def __init__(self, vision: VisionConfig, num_frames: int, attention: str = "split",
                 temporal_attention: bool = True):
        super().__init__(vision, num_frames)
        if attention not in ("split", "dense"):
            raise ValueError(f"attention must be 'split' or 'dense', got {attention!r}")
        self.attention = attention
        self.seen_globals: slice | None = None  # set by subclasses once their global rows are known
        self.positions = TemporalPositions(num_frames, vision.width)
        self.temporal_layers = nn.ModuleList(
            [TemporalAttention(vision.width, vision.heads, vision.layer_norm_eps) for _ in range(vision.layers)]
        ) if temporal_attention else None

    def init_from_clip(self, vit: VisionTransformer) -> None:
        if self.temporal_layers is not None:
            for layer, block in zip(self.temporal_layers, vit.transformer.resblocks):
                layer.init_from_block(block)

    # -- what subclasses define
    def global_tokens(self, vit: VisionTransformer, batch: int, dtype: torch.dtype) -> torch.Tensor:
        raise NotImplementedError

    def global_rows(self, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def read_out(self, vit: VisionTransformer, global_states: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- the shared forward
    def forward(self, vit: VisionTransformer, video: torch.Tensor) -> torch.Tensor:
        batch, frames = video.shape[:2]
        patches = vit.embed_patches(video.flatten(0, 1)).unflatten(0, (batch, frames))  # [B, T, N, W]
        patches = patches + self.positions(frames).to(patches.dtype)[None, :, None]
        tokens = self.global_tokens(vit, batch, patches.dtype)
        num_global, num_patches = tokens.shape[1], patches.shape[2]
        x = vit.ln_pre(torch.cat([tokens, patches.flatten(1, 2)], dim=1))
        rows, patch_sees = (t.to(x.device) for t in self.global_rows(frames))
        if self.attention == "dense":
            mask = global_token_mask(rows, patch_sees, frames, num_patches)
            attend_fn = partial(dense_global_attention, mask=mask)
        else:
            global_mask = global_query_mask(rows, num_global, num_patches)  # once for all layers
            # always masked (no data-dependent branch: torch.compile traces one graph); a full mask costs nothing
            # measurable on the few global queries
            attend_fn = partial(split_global_attention, global_mask=global_mask, patch_sees=patch_sees,
                                frames=frames, seen=self.seen_globals)
        checkpointing = vit.transformer.grad_checkpointing
        for i, block in enumerate(vit.transformer.resblocks):
            x = run_layer(checkpointing, self._layer, i, block, x, attend_fn, num_global, frames)
        return self.read_out(vit, x[:, :num_global])

    def _layer(self, i: int, block: nn.Module, x: torch.Tensor, attend_fn, num_global: int,
               frames: int) -> torch.Tensor:
        if self.temporal_layers is not None:
            patches = x[:, num_global:].unflatten(1, (frames, -1))
            x = torch.cat([x[:, :num_global], self.temporal_layers[i](patches).flatten(1, 2)], dim=1)
        return block(x, attend_fn=attend_fn)


class HierarchicalTemporalAttention(GlobalTokenDesign):
    """VidLA's video tower: a video [CLS], U levels x V [MST] tokens attending to frames strided by r^level,
    patches attending within their frame and to the [MST] tokens, and spatially-local temporal attention
    before every layer. Ablations: mst_levels=0 (no [MST]), mst_hierarchy=False, temporal_attention=False."""

    def __init__(self, vision: VisionConfig, num_frames: int, mst_levels: int = 3, mst_per_level: int = 4,
                 mst_stride: int = 2, patch_sees_cls: bool = False, mst_sees: str = "lower_or_equal",
                 mst_hierarchy: bool = True, temporal_attention: bool = True, attention: str = "split"):
        super().__init__(vision, num_frames, attention, temporal_attention)
        if mst_levels < 0 or mst_per_level < 1 or mst_stride < 1:
            raise ValueError("need mst_levels >= 0, mst_per_level >= 1, mst_stride >= 1")
        self.levels, self.per_level, self.stride = mst_levels, mst_per_level, mst_stride
        self.patch_sees_cls, self.mst_sees, self.hierarchy = patch_sees_cls, mst_sees, mst_hierarchy
        # validates the options now rather than at the first forward; patches see the same globals at any T
        self.seen_globals = contiguous_run(self.global_rows(num_frames)[1])
        self.mst_tokens = nn.Parameter(torch.randn(mst_levels * mst_per_level, vision.width) * 0.02)

    def global_tokens(self, vit: VisionTransformer, batch: int, dtype: torch.dtype) -> torch.Tensor:
        mst = self.mst_tokens.to(dtype)[None].expand(batch, -1, -1)
        return torch.cat([vit.cls_token(batch, dtype), mst], dim=1)

    def global_rows(self, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        return hta_global_rows(frames, self.levels, self.per_level, self.stride, self.mst_sees, self.hierarchy,
                               self.patch_sees_cls)

    def read_out(self, vit: VisionTransformer, global_states: torch.Tensor) -> torch.Tensor:
        return vit.project(global_states[:, 0])


class ProxyTokens(GlobalTokenDesign):
    """CLIP-ViP's video proxy tokens: M learnable tokens that see every patch; patches see their frame and
    the proxies; the video embedding is the mean of the proxies' outputs through ln_post and proj."""

    def __init__(self, vision: VisionConfig, num_frames: int, num_proxies: int = 4, attention: str = "split"):
        super().__init__(vision, num_frames, attention, temporal_attention=False)
        self.proxies = nn.Parameter(torch.zeros(num_proxies, vision.width))
        self.seen_globals = contiguous_run(self.global_rows(num_frames)[1])

    def init_from_clip(self, vit: VisionTransformer) -> None:
        # CLIP-ViP starts the proxies from CLIP's [CLS]; small noise lets them differ
        with torch.no_grad():
            cls = vit.class_embedding + vit.positional_embedding[0]
            self.proxies.copy_(cls[None] + 0.02 * torch.randn_like(self.proxies))

    def global_tokens(self, vit: VisionTransformer, batch: int, dtype: torch.dtype) -> torch.Tensor:
        return self.proxies.to(dtype)[None].expand(batch, -1, -1)

    def global_rows(self, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        count = self.proxies.shape[0]
        return torch.ones(count, count + frames, dtype=torch.bool), torch.ones(count, dtype=torch.bool)

    def read_out(self, vit: VisionTransformer, global_states: torch.Tensor) -> torch.Tensor:
        return vit.project(global_states.mean(dim=1))

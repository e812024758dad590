"""The one attention primitive and the one transformer block that every tower and temporal design uses.

Parameter names follow OpenAI CLIP (`attn.in_proj_weight`, `mlp.c_fc`, ...) so CLIP weights load by name.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class QuickGELU(nn.Module):
    """OpenAI CLIP's activation: x * sigmoid(1.702 x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "quick_gelu": QuickGELU,
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype (CLIP does this for fp16 weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(),
                            self.eps).to(x.dtype)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
           is_causal: bool = False) -> torch.Tensor:
    """Scaled dot-product attention on [..., heads, L, head_dim] tensors.

    `mask` is boolean (True = may attend) and broadcastable to [..., heads, Lq, Lk].
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)


class Attention(nn.Module):
    """Multi-head self-attention with a fused QKV projection (nn.MultiheadAttention's parameter layout)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.width, self.heads = width, heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[..., L, width] -> q, k, v, each [..., heads, L, head_dim]."""
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.chunk(3, dim=-1)
        return self.split_heads(q), self.split_heads(k), self.split_heads(v)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(-3, -2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """[..., heads, L, head_dim] -> [..., L, width] through the output projection."""
        return self.out_proj(x.transpose(-3, -2).flatten(-2))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        q, k, v = self.project_qkv(x)
        return self.merge_heads(attend(q, k, v, mask, is_causal))


# An attention override for a block: (block's Attention, normalised input) -> attention output.
AttendFn = Callable[[Attention, torch.Tensor], torch.Tensor]


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).

    Temporal designs reuse CLIP's weights with a different token pattern by passing `attend`, a function
    that computes the attention from this block's `Attention` (for example split or masked attention).
    """

    def __init__(self, width: int, heads: int, mlp_dim: int, activation: str = "quick_gelu", eps: float = 1e-5):
        super().__init__()
        self.ln_1 = LayerNorm(width, eps=eps)
        self.attn = Attention(width, heads)
        self.ln_2 = LayerNorm(width, eps=eps)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, mlp_dim)),
            ("gelu", make_activation(activation)),
            ("c_proj", nn.Linear(mlp_dim, width)),
        ]))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, is_causal: bool = False,
                attend_fn: AttendFn | None = None) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + (self.attn(h, mask, is_causal) if attend_fn is None else attend_fn(self.attn, h))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_dim: int, activation: str = "quick_gelu",
                 eps: float = 1e-5):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads, mlp_dim, activation, eps) for _ in range(layers)])
        self.grad_checkpointing = False

    def run_block(self, index: int, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Runs block `index`, through activation checkpointing when enabled and training."""
        block = self.resblocks[index]
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False, **kwargs)
        return block(x, **kwargs)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        for i in range(self.layers):
            x = self.run_block(i, x, mask=mask, is_causal=is_causal)
        return x

    def init_weights(self) -> None:
        """OpenAI CLIP's initialisation for the blocks."""
        proj_std = self.width**-0.5 * (2 * self.layers) ** -0.5
        for block in self.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=self.width**-0.5)
            nn.init.zeros_(block.attn.in_proj_bias)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.zeros_(block.attn.out_proj.bias)
            nn.init.normal_(block.mlp.c_fc.weight, std=(2 * self.width) ** -0.5)
            nn.init.zeros_(block.mlp.c_fc.bias)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
            nn.init.zeros_(block.mlp.c_proj.bias)

"""AdamW parameter groups and the cosine schedule with warm-up."""

from __future__ import annotations

import math

import torch
from torch import nn

from vidla.train.config import OptimSection

# Parameters without weight decay: gains and biases (1-D), embeddings, the [CLS]/[MST]/proxy tokens, position
# tables and the temperature.
_NO_DECAY_NAMES = ("embedding", "mst_tokens", "proxies", "positions.table", "logit_scale")


def parameter_groups(model: nn.Module, optim: OptimSection) -> list[dict]:
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = param.ndim >= 2 and not any(key in name for key in _NO_DECAY_NAMES)
        # new parameters (temporal design, frame selector) learn at temporal_lr
        temporal = any(name.startswith(p) or f".{p}" in name for p in ("temporal.", "frame_selector."))
        groups.setdefault((decay, temporal), []).append(param)
    out = []
    for (decay, temporal), params in sorted(groups.items()):
        lr = optim.temporal_lr if temporal and optim.temporal_lr is not None else optim.lr
        out.append({"params": params, "weight_decay": optim.weight_decay if decay else 0.0, "lr": lr,
                    "base_lr": lr, "name": f"{'temporal' if temporal else 'clip'}/{'decay' if decay else 'no_decay'}"})
    return out


def build_optimizer(model: nn.Module, optim: OptimSection) -> torch.optim.AdamW:
    from torch.distributed.tensor import DTensor

    from vidla.train.perf import optimizer_options

    sharded = any(isinstance(p, DTensor) for p in model.parameters())
    return torch.optim.AdamW(parameter_groups(model, optim), betas=tuple(optim.betas), eps=optim.eps,
                             **optimizer_options(optim.implementation, sharded))


def cosine_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to `min_ratio` at `total` steps."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, optim: OptimSection, total_steps: int):
    min_ratio = optim.min_lr / optim.lr if optim.lr else 0.0
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_factor(step, total_steps, optim.warmup_steps, min_ratio))

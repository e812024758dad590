"""Helpers shared by the benchmark scripts (run them as `python bench/NAME.py`)."""

from __future__ import annotations

from typing import Callable


def count_macs(forward: Callable[[], object]) -> int:
    """Multiply-accumulates of one call: matmuls and convolutions from torch's flop counter, attention from
    the shapes of every scaled_dot_product_attention call (Lq x Lk x head_dim per head, for QK^T and for AV),
    as computed: a masked dense call counts in full."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    attention = 0
    original = F.scaled_dot_product_attention

    def counting(q, k, v, *args, **kwargs):
        nonlocal attention
        attention += 2 * q.shape[:-2].numel() * q.shape[-2] * k.shape[-2] * q.shape[-1]
        return original(q, k, v, *args, **kwargs)

    F.scaled_dot_product_attention = counting
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            forward()
    finally:
        F.scaled_dot_product_attention = original
    dense = sum(n for op, n in counter.get_flop_counts()["Global"].items() if "attention" not in str(op))
    return dense // 2 + attention


def mean_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its t-interval (0 for a single value)."""
    import statistics

    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5)

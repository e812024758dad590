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
    """Mean and the half-width of its t-interval (NaN for a single value: one value has no interval)."""
    import statistics

    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    t = stats.t.ppf(0.5 + confidence / 2, len(values) - 1)
    return mean, float(t * statistics.stdev(values) / len(values) ** 0.5)


# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, in TFLOP/s, matched in order against
# torch.cuda.get_device_name() (None: not known here); pass --peak-tflops for anything else.
PEAK_BF16_TFLOPS: tuple[tuple[str, float | None], ...] = (
    ("GH200", 989.0), ("H200", 989.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0),
    ("H800", 989.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L4", 121.0), ("A10G", None), ("A10", 125.0),
)


def peak_tflops(device_name: str, override: float | None = None) -> float | None:
    """The device's dense bf16 peak (TFLOP/s): `override` when given, else the table's first match, else None."""
    if override:
        return override
    return next((tflops for key, tflops in PEAK_BF16_TFLOPS if key in device_name), None)


def largest_fitting(fits: Callable[[int], bool], start: int, limit: int, resolution: float = 1 / 8) -> tuple[int, bool]:
    """The largest batch b <= limit with fits(b): double from `start` until a batch fails (or the limit is
    reached), then bisect between the last fit and the first failure down to `resolution` of the fit.
    Returns (batch, capped): capped when the limit itself fit, so the true maximum may be higher;
    batch 0 when not even `start` fits."""
    if not fits(start):
        return 0, False
    good, bad = start, None
    while bad is None:
        if good >= limit:
            return good, True
        trial = min(2 * good, limit)
        if fits(trial):
            good = trial
        else:
            bad = trial
    while bad - good > max(1, int(good * resolution)):
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fits(middle) else (good, middle)
    return good, False

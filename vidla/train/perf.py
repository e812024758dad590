"""Performance options of the training loop: torch.compile with an eager fallback, the optimiser's kernel, the
scaled-dot-product-attention backends, and batches moved to the device ahead of time (docs/training.md,
"Performance options")."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Iterator, Sequence

import torch

OPTIMIZER_IMPLEMENTATIONS = ("auto", "fused", "foreach", "for_loop")
SDPA_BACKENDS = ("flash", "efficient", "cudnn", "math")


class CompileWithFallback:
    """`fn` compiled by torch.compile, falling back to `fn` itself, with a warning, when compiling fails: when
    torch.compile raises, or when the first compiled call does (compilation is lazy: most failures, a missing C++
    compiler or an unsupported op, surface there). Once a compiled call has succeeded, errors propagate, and so
    does an out-of-memory error (not a compiler's fault). The backward graph is compiled at the first backward
    pass, outside this guard: a failure there stops the run with torch's own message."""

    def __init__(self, fn: Callable[..., Any], **compile_options: Any):
        self.eager, self.compiled_ok = fn, False
        try:
            self.compiled: Callable[..., Any] | None = torch.compile(fn, **compile_options)
        except Exception as e:  # noqa: BLE001 - any failure to compile means: run eager
            self._give_up(e)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is None:
            return self.eager(*args, **kwargs)
        if self.compiled_ok:
            return self.compiled(*args, **kwargs)
        try:
            out = self.compiled(*args, **kwargs)
        except torch.cuda.OutOfMemoryError:  # not a compile failure: the batch is too large either way
            raise
        except Exception as e:  # noqa: BLE001
            self._give_up(e)
            return self.eager(*args, **kwargs)
        self.compiled_ok = True
        return out

    def _give_up(self, error: Exception) -> None:
        self.compiled = None
        warnings.warn(f"torch.compile failed ({type(error).__name__}: {str(error)[:300]}); running eager",
                      RuntimeWarning, stacklevel=3)


def optimizer_options(implementation: str, sharded: bool = False) -> dict[str, bool]:
    """AdamW's keyword arguments for an implementation. auto: the fused kernel (on a CPU 5.6x faster than
    torch's default per-parameter loop for vidla-b32, docs/benchmarks.md; on CUDA one kernel for all
    parameters), or the multi-tensor (foreach) kernels for FSDP's sharded parameters (`sharded`)."""
    if implementation not in OPTIMIZER_IMPLEMENTATIONS:
        raise ValueError(f"optimizer implementation must be one of {OPTIMIZER_IMPLEMENTATIONS}, got "
                         f"{implementation!r}")
    if implementation == "auto":
        implementation = "foreach" if sharded else "fused"
    return {"fused": {"fused": True}, "foreach": {"foreach": True}, "for_loop": {"foreach": False}}[implementation]


def sdpa_backends(names: Sequence[str] | None):
    """A context restricting scaled_dot_product_attention to these backends (None: torch's own choice).
    With no "math" in the list, a call no fused kernel accepts raises instead of silently taking the slow path."""
    if not names:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    unknown = [n for n in names if n not in SDPA_BACKENDS]
    if unknown:
        raise ValueError(f"unknown attention backend(s) {unknown}; known: {SDPA_BACKENDS}")
    table = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
             "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
    return sdpa_kernel([table[n] for n in names])


def batch_to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The training batch's tensors the step uses (video, tokens, multi-clip samples' sentence tokens) on the
    device, non-blocking from pinned memory; uint8 frames (`data.uint8_frames`) normalised there."""
    from vidla.data.transforms import normalize

    video = batch["video"].to(device, non_blocking=True)
    if video.dtype == torch.uint8:
        video = normalize(video)
    moved = {**batch, "video": video,
             "tokens": {kind: ids.to(device, non_blocking=True) for kind, ids in batch["tokens"].items()}}
    if "sentence_tokens" in batch:
        moved["sentence_tokens"] = batch["sentence_tokens"].to(device, non_blocking=True)
    return moved


def _device_tensors(batch: dict[str, Any]) -> list[torch.Tensor]:
    """The tensors `batch_to_device` put on the device."""
    return [batch["video"], *batch["tokens"].values(), *([batch["sentence_tokens"]] if "sentence_tokens" in batch
                                                         else [])]


class DevicePrefetcher:
    """Batches already on the device (`data.prefetch_to_device`): on CUDA, batch i+1 is copied and normalised on
    a side stream while step i computes, so the copy leaves the training stream's critical path. On a CPU the
    batches are only prepared one step ahead."""

    def __init__(self, batches: Iterator[dict[str, Any]], device: torch.device):
        self.batches, self.device = batches, device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.ahead = self._load()

    def _load(self) -> dict[str, Any] | None:
        batch = next(self.batches, None)
        if batch is None or self.stream is None:
            return None if batch is None else batch_to_device(batch, self.device)
        with torch.cuda.stream(self.stream):
            return batch_to_device(batch, self.device)

    def __iter__(self) -> "DevicePrefetcher":
        return self

    def __next__(self) -> dict[str, Any]:
        if self.ahead is None:
            raise StopIteration
        batch = self.ahead
        if self.stream is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(self.stream)  # the copy is done before the step uses it
            for tensor in _device_tensors(batch):
                tensor.record_stream(current)  # its memory is not reused while the step runs
        self.ahead = self._load()
        return batch

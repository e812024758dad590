"""Embedding caches: one safetensors file per (model, inputs, preprocessing), written atomically.

The key is a SHA-256 of everything that changes the numbers: the model's weights and config (hashed from the
tensors themselves, so a moved or renamed checkpoint still hits and a retrained one never does), the exact input
list (texts, or video paths with their size, modification time and window), the frame count, sampling, views,
image size and precision. Re-running an evaluation with another metric option (DSL, duration bins) re-uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidla.io import atomic_write

_METADATA_KEY = "vidla_cache"
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """$VIDLA_CACHE_DIR, else $XDG_CACHE_HOME/vidla/embeddings, else ~/.cache/vidla/embeddings."""
    if os.environ.get("VIDLA_CACHE_DIR"):
        return Path(os.environ["VIDLA_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vidla" / "embeddings"


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's config and every tensor of its state dict (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha256()
    config = getattr(model, "config", None)
    digest.update(json.dumps(asdict(config) if is_dataclass(config) else repr(config), sort_keys=True,
                             default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())  # bytes, whatever the dtype
    return digest.hexdigest()


def file_identity(path: str | os.PathLike) -> dict[str, Any]:
    """Path, size and mtime: a re-encoded or replaced video invalidates the cache without hashing its bytes."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return {"path": str(path), "missing": True}
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cache_key(description: dict[str, Any]) -> str:
    payload = json.dumps({"version": CACHE_VERSION, **description}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class EmbeddingCache:
    """Tensors stored under `folder/<kind>-<key>.safetensors`; `load` returns None on a miss."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, kind: str, key: str) -> Path:
        return self.folder / f"{kind}-{key[:32]}.safetensors"

    def load(self, kind: str, key: str) -> dict[str, torch.Tensor] | None:
        from safetensors import safe_open

        path = self.path(kind, key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                if json.loads(f.metadata()[_METADATA_KEY])["key"] != key:
                    return None  # a 128-bit prefix collision; recompute rather than trust it
                return {name: f.get_tensor(name) for name in f.keys()}
        except Exception:  # a truncated or foreign file: treat as a miss, it is overwritten atomically
            return None

    def save(self, kind: str, key: str, tensors: dict[str, torch.Tensor], description: dict[str, Any]) -> Path:
        from safetensors.torch import save

        summary = {k: v for k, v in description.items() if k != "inputs"}  # the full input list is in the key
        metadata = {_METADATA_KEY: json.dumps({"key": key, **summary}, default=str)}
        path = self.path(kind, key)
        with atomic_write(path, "wb") as f:
            f.write(save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata))
        return path

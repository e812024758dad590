"""Training configuration: typed dataclasses, loaded from YAML with `key=value` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidla.config import apply_overrides, from_dict
from vidla.config import load_yaml_with_base as _load_with_base


@dataclass
class ModelSection:
    name: str = "vidla-b32"               # an architecture from `vidla models`
    pretrained: str | None = None         # CLIP / vidla weights to start from (any format load_model reads)
    temporal: str = "hta"
    temporal_options: dict[str, Any] = field(default_factory=dict)
    grad_checkpointing: bool = False


@dataclass
class DataSection:
    train: str | None = None              # clip manifest (JSONL) or WebDataset shard pattern
    val: str | None = None                # manifest for periodic validation retrieval
    text_kinds: list[str] = field(default_factory=lambda: ["caption", "subtitle"])
    num_frames: int = 12
    sampling: str = "uniform"             # uniform (paper) | random (TSN segment-random) | dense | fps
    augment: bool = True                  # multi-scale crop {1.0, 0.8} + flip; False = centre crop
    workers: int = 4
    random_clips: int = 0                 # > 0: random tensors instead of video files (benchmarks, tests)
    group_size: int = 1                   # keep runs of this many consecutive manifest records in one batch


@dataclass
class OptimSection:
    lr: float = 2e-5
    temporal_lr: float | None = None      # learning rate of the new temporal parameters (None = lr)
    min_lr: float = 4e-8
    weight_decay: float = 0.02
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6
    warmup_steps: int = 0
    clip_grad: float = 10.0               # max gradient norm; 0 = off


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    output_dir: str = "runs/vidla"
    steps: int = 1000
    batch_size: int = 64                  # global batch, over all processes and accumulation steps
    accumulation: int = 1                 # micro-batches per optimiser step
    precision: str = "bf16"               # bf16 autocast | fp32
    local_loss: bool = False              # each rank's rows only (less memory, same gradients)
    strategy: str = "ddp"                 # ddp | fsdp (under torchrun)
    device: str | None = None             # default: cuda when available
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    val_every: int = 0                    # 0 = only at the end (when data.val is set)
    tensorboard: bool = True

    def validate(self, world_size: int = 1) -> None:
        per_step = world_size * self.accumulation
        if self.batch_size % per_step:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by processes x accumulation "
                             f"({world_size} x {self.accumulation})")
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"precision must be bf16 or fp32, got {self.precision!r}")
        if self.strategy not in ("ddp", "fsdp"):
            raise ValueError(f"strategy must be ddp or fsdp, got {self.strategy!r}")
        if not self.data.train and self.data.random_clips <= 0:
            raise ValueError("set data.train (a manifest) or data.random_clips")


def load_train_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A config from YAML (optional) and `section.key=value` overrides. A YAML file may name a `base:`
    config (relative to itself) that it overrides."""
    data = _load_with_base(Path(path)) if path else {}
    return from_dict(TrainConfig, apply_overrides(data, overrides or []))

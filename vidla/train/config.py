"""Training configuration: typed dataclasses, loaded from YAML with `key=value` overrides."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidla.config import ConfigError, apply_overrides, from_dict
from vidla.config import load_yaml_with_base as _load_with_base
from vidla.models.config import FrameSelectionConfig


@dataclass
class ModelSection:
    name: str = "vidla-b32"               # an architecture from `vidla models`
    pretrained: str | None = None         # CLIP / vidla weights to start from (any format load_model reads)
    temporal: str = "hta"
    temporal_options: dict[str, Any] = field(default_factory=dict)
    grad_checkpointing: bool = False
    channels_last: bool = False           # patch embedding on NHWC images (for cuDNN; no gain on CPU)
    frame_selection: FrameSelectionConfig | None = None  # e.g. {segments: 4}: encode K of data.num_frames frames


@dataclass
class SelectionSection:
    """Training a model with frame selection (model.frame_selection set; ignored otherwise), as ViLA does."""
    temperature_start: float = 1.0        # Gumbel-softmax temperature, annealed exponentially over the steps
    temperature_end: float = 0.01
    text_guided: float = 0.5              # share of clips whose selection is guided by their first text kind
    distill_weight: float = 0.01          # x MSE(student features on the K selected frames, teacher's on all T)
    teacher: str | None = None            # teacher checkpoint; None = a frozen copy of the model at the start


@dataclass
class DataSection:
    train: str | None = None              # clip manifest (JSONL) or WebDataset shard pattern
    val: str | None = None                # manifest for periodic validation retrieval
    text_kinds: list[str] | None = None    # None: the kinds every clip of data.train holds (else the kinds any holds)
    num_frames: int = 12
    sampling: str = "uniform"             # uniform (paper) | random (TSN segment-random) | dense | fps
    augment: bool = True                  # multi-scale crop {1.0, 0.8} + flip; False = centre crop
    workers: int = 4
    random_clips: int = 0                 # > 0: random tensors instead of video files (benchmarks, tests)
    group_size: int = 1                   # keep runs of this many consecutive manifest records in one batch
    max_bad_fraction: float = 0.5         # stop once more than this fraction of the clips tried failed to load
    clips: int = 0                        # > 0: multi-clip samples (docs/training.md), num_frames / clips frames each
    uint8_frames: bool = False            # loader hands uint8 frames; normalised on the device (4x fewer bytes)
    prefetch_to_device: bool = False      # copy the next batch to the GPU on a side stream during the step


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
    implementation: str = "auto"          # AdamW kernel: auto (fused; foreach under FSDP) | fused | foreach | for_loop


@dataclass
class LossSection:
    # LF-VILA's multimodal temporal contrastive loss (SPEC 5.1) beside the video-text loss; needs data.clips > 1
    mtc_weight: float = 0.0               # 0 = off; LF-VILA: 0.25
    mtc_temperature: float = 0.05
    mtc_anchors: int = 2                  # anchor clips per sample
    mtc_candidates: int = 2               # candidate clips of the same sample
    mtc_other_negatives: int = 3          # candidate clips from other samples of the global batch
    mtc_layer: int | None = None          # clip features after this block (1-based); None = the last block


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    selection: SelectionSection = field(default_factory=SelectionSection)
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
    threads: int | None = None            # CPU threads per process (torch.set_num_threads); None: torch's default
    compile: bool = False                 # torch.compile the video tower (eager, with a warning, if that fails)
    attention_backends: list[str] | None = None  # restrict SDPA to these: flash | efficient | cudnn | math

    def validate(self, world_size: int = 1) -> None:
        """Range checks of every value; a ConfigError names the field."""
        _check_ranges(self)
        per_step = world_size * self.accumulation
        if self.batch_size % per_step:
            raise ConfigError(f"batch_size: {self.batch_size} is not divisible by processes x accumulation "
                              f"({world_size} x {self.accumulation})")
        if self.loss.mtc_weight > 0 and self.data.clips < 2:
            raise ConfigError("loss.mtc_weight: > 0 needs multi-clip samples: set data.clips (LF-VILA: 4)")
        if self.data.clips > 0 and self.data.random_clips <= 0 and self.data.text_kinds not in (None, ["caption"]):
            raise ConfigError("data.text_kinds: multi-clip samples have one text kind, the paragraph: "
                              "set data.text_kinds=[caption]")
        if self.data.clips > 0 and self.data.num_frames % self.data.clips:
            raise ConfigError(f"data.clips: data.num_frames {self.data.num_frames} must divide into data.clips "
                              f"{self.data.clips} equal clips")
        selection = self.model.frame_selection
        if selection and self.data.num_frames % selection.segments:
            raise ConfigError(f"model.frame_selection.segments: data.num_frames {self.data.num_frames} is not a "
                              f"multiple of {selection.segments}")
        if selection and self.data.clips > 0:
            raise ConfigError("model.frame_selection: frame selection with multi-clip samples (data.clips) is not "
                              "supported; use one or the other")
        if not 0 <= self.selection.text_guided <= 1:
            raise ConfigError(f"selection.text_guided: must lie in [0, 1], got {self.selection.text_guided!r}")
        if not self.selection.distill_weight >= 0:
            raise ConfigError(f"selection.distill_weight: must be >= 0, got {self.selection.distill_weight!r}")
        if not 0 < self.selection.temperature_end <= self.selection.temperature_start:
            raise ConfigError("selection.temperature_end: must satisfy 0 < temperature_end <= temperature_start, "
                              f"got {self.selection.temperature_end!r} and {self.selection.temperature_start!r}")
        if not self.data.train and self.data.random_clips <= 0:
            raise ConfigError("data.train: set data.train (a manifest) or data.random_clips")


_CHOICES = {"precision": ("bf16", "fp32"), "strategy": ("ddp", "fsdp"),
            "data.sampling": ("uniform", "random", "dense", "fps"),
            "optim.implementation": ("auto", "fused", "foreach", "for_loop")}
_POSITIVE = ("steps", "batch_size", "accumulation", "checkpoint_every", "log_every", "data.num_frames",
             "data.group_size", "threads", "loss.mtc_anchors", "loss.mtc_candidates")
_NON_NEGATIVE = ("keep_checkpoints", "val_every", "seed", "data.workers", "data.random_clips", "optim.lr",
                 "optim.temporal_lr", "optim.min_lr", "optim.weight_decay", "optim.warmup_steps", "optim.clip_grad",
                 "data.clips", "loss.mtc_weight", "loss.mtc_other_negatives")
_ATTENTION_BACKENDS = ("flash", "efficient", "cudnn", "math")


def _check_ranges(config: TrainConfig) -> None:
    def get(name: str) -> Any:
        value: Any = config
        for part in name.split("."):
            value = getattr(value, part)
        return value

    for name, choices in _CHOICES.items():
        if get(name) not in choices:
            raise ConfigError(f"{name}: must be one of {', '.join(choices)}, got {get(name)!r}")
    for name in (*_POSITIVE, *_NON_NEGATIVE):
        value, positive = get(name), name in _POSITIVE
        if value is None and name in ("threads", "optim.temporal_lr"):
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or value < (1 if positive else 0):
            raise ConfigError(f"{name}: must be {'positive' if positive else 'zero or more'}, got {value!r}")
    if not (isinstance(config.loss.mtc_temperature, (int, float)) and config.loss.mtc_temperature > 0):
        raise ConfigError(f"loss.mtc_temperature: must be a positive number, got {config.loss.mtc_temperature!r}")
    backends = config.attention_backends
    if backends is not None and (not isinstance(backends, list) or not backends
                                 or any(b not in _ATTENTION_BACKENDS for b in backends)):
        raise ConfigError(f"attention_backends: must be a non-empty list of {', '.join(_ATTENTION_BACKENDS)}, "
                          f"got {backends!r}")
    if not 0 <= config.data.max_bad_fraction < 1:
        raise ConfigError(f"data.max_bad_fraction: must be in [0, 1), got {config.data.max_bad_fraction!r}")
    optim = config.optim
    if len(optim.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in optim.betas):
        raise ConfigError(f"optim.betas: must be two numbers in [0, 1), got {optim.betas!r}")
    if not (isinstance(optim.eps, (int, float)) and optim.eps > 0):
        raise ConfigError(f"optim.eps: must be a positive number, got {optim.eps!r}")
    if optim.min_lr > optim.lr:
        raise ConfigError(f"optim.min_lr: {optim.min_lr} is above optim.lr {optim.lr}")
    kinds = config.data.text_kinds
    if kinds is not None and (not kinds or len(set(kinds)) != len(kinds) or
                              not all(isinstance(k, str) and k for k in kinds)):
        raise ConfigError(f"data.text_kinds: must be a non-empty list of distinct text kinds, got {kinds!r}")
    for name in ("model.name", "model.temporal", "output_dir"):
        if not isinstance(get(name), str) or not get(name):
            raise ConfigError(f"{name}: must be a non-empty string, got {get(name)!r}")
    from vidla.models import list_models
    from vidla.models.temporal import TEMPORAL_DESIGNS

    if config.model.name not in list_models():
        raise ConfigError(f"model.name: unknown architecture {config.model.name!r}; known: {', '.join(list_models())}")
    if config.model.temporal not in TEMPORAL_DESIGNS:
        raise ConfigError(f"model.temporal: unknown temporal design {config.model.temporal!r}; known: "
                          f"{', '.join(sorted(TEMPORAL_DESIGNS))}")
    if not isinstance(config.model.temporal_options, dict):
        raise ConfigError(f"model.temporal_options: must be a mapping, got {config.model.temporal_options!r}")


def load_train_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A config from YAML (optional) and `section.key=value` overrides. A YAML file may name a `base:`
    config (relative to itself) that it overrides."""
    data = _load_with_base(Path(path)) if path else {}
    config = from_dict(TrainConfig, apply_overrides(data, overrides or []))
    _check_ranges(config)
    return config

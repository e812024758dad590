"""`vidla distill-text` configuration: typed dataclasses, YAML + `key=value` overrides (vidla.config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vidla.config import ConfigError, apply_overrides, from_dict, load_yaml_with_base
from vidla.distill.masking import MaskingConfig
from vidla.distill.student import StudentConfig
from vidla.train.config import OptimSection

CONTRASTIVE = ("ntxent", "crd", "none")


@dataclass
class LossSection:
    mlm_weight: float = 1.0
    nst_weight: float = 1.0               # 0 = no NST term
    contrastive: str = "ntxent"           # ntxent (VidLanKD's code) | crd (the paper) | none
    contrastive_weight: float = 1.0
    temperature: float = 1.0              # NT-Xent's (VidLanKD's value)
    crd_temperature: float = 0.07
    crd_dim: int = 128
    teacher_input: str = "masked"         # masked (the student's corrupted ids, as VidLanKD) | original

    @property
    def distills(self) -> bool:
        return self.nst_weight > 0 or (self.contrastive != "none" and self.contrastive_weight > 0)


def _student_optim() -> OptimSection:
    # from scratch, so a BERT-like learning rate, not CLIP fine-tuning's
    return OptimSection(lr=5e-4, min_lr=1e-5, weight_decay=0.01, betas=(0.9, 0.98), warmup_steps=50,
                        clip_grad=1.0)


@dataclass
class DistillConfig:
    teacher: str | None = None            # any checkpoint vidla.load_model reads; its text tower teaches
    corpus: list[str] = field(default_factory=list)  # text files, one text per line
    student: StudentConfig = field(default_factory=StudentConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=_student_optim)
    output_dir: str = "runs/distill"
    steps: int = 2000
    batch_size: int = 64                  # global batch, over all processes
    accumulation: int = 1
    precision: str = "fp32"               # fp32 | bf16 autocast
    strategy: str = "ddp"                 # the student is small: DDP only
    device: str | None = None
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    tensorboard: bool = False
    threads: int | None = None            # CPU threads per process (torch.set_num_threads); None: torch's default

    def validate(self, world_size: int = 1) -> None:
        for name in ("steps", "batch_size", "accumulation", "checkpoint_every", "log_every", "keep_checkpoints"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: must be a positive whole number, got {value!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ConfigError(f"threads: must be a positive whole number, got {self.threads!r}")
        if self.batch_size % (world_size * self.accumulation):
            raise ValueError(f"batch_size {self.batch_size} is not divisible by processes x accumulation "
                             f"({world_size} x {self.accumulation})")
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"precision must be bf16 or fp32, got {self.precision!r}")
        if self.strategy != "ddp":
            raise ValueError(f"distill-text runs under DDP only, got strategy={self.strategy!r}")
        if self.loss.contrastive not in CONTRASTIVE:
            raise ValueError(f"loss.contrastive must be one of {CONTRASTIVE}, got {self.loss.contrastive!r}")
        if not self.corpus:
            raise ValueError("set corpus: one or more text files, one text per line")
        if self.loss.distills and not self.teacher:
            raise ValueError("distillation needs a teacher checkpoint (teacher=...), or use --mlm-only")
        self.masking.validate()


def load_distill_config(path: str | Path | None = None, overrides: list[str] | None = None) -> DistillConfig:
    data = load_yaml_with_base(path) if path else {}
    return from_dict(DistillConfig, apply_overrides(data, overrides or []))


def mlm_only(config: DistillConfig) -> DistillConfig:
    """The baseline: the same student, data, masking and steps, trained with masked LM alone."""
    config.loss.nst_weight, config.loss.contrastive = 0.0, "none"
    return config

"""Model architecture configs and the registry of named architectures."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from vidla.config import from_dict


@dataclass
class VisionConfig:
    image_size: int = 224
    patch_size: int = 32
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    activation: str = "quick_gelu"  # OpenAI CLIP uses QuickGELU; most open_clip LAION models use "gelu"
    layer_norm_eps: float = 1e-5

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size


@dataclass
class TextConfig:
    context_length: int = 77
    vocab_size: int = 49408
    width: int = 512
    layers: int = 12
    heads: int = 8
    mlp_dim: int = 2048
    activation: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    eot_token_id: int = 49407  # the text feature is read at the first end-of-text token


@dataclass
class FrameSelectionConfig:
    """ViLA-style key-frame selection (SPEC 5.2): T candidate frames in `segments` equal segments, one frame
    picked per segment from cheap per-frame features (and the text, when one is given)."""

    segments: int = 4                     # K: frames the tower encodes
    features: str = "patch"               # "patch": CLIP's conv1 patch embedding, pooled | "pixels": pooled RGB
    grid: int = 2                         # features are average-pooled to a grid x grid map per frame
    hidden: int = 128                     # width of the frame scorer


@dataclass
class ModelConfig:
    embed_dim: int = 512
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    temporal: str = "meanpool"
    num_frames: int = 12
    temporal_options: dict[str, Any] = field(default_factory=dict)
    logit_scale_init: float = math.log(1 / 0.07)
    frame_selection: FrameSelectionConfig | None = None  # None: the tower encodes every frame it is given

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return from_dict(cls, data)


def _clip(embed_dim, image_size, patch, v_width, v_layers, t_width, t_layers, **extra) -> ModelConfig:
    vision = VisionConfig(image_size=image_size, patch_size=patch, width=v_width, layers=v_layers,
                          heads=max(1, v_width // 64), mlp_dim=4 * v_width)
    text = TextConfig(width=t_width, layers=t_layers, heads=max(1, t_width // 64), mlp_dim=4 * t_width)
    return ModelConfig(embed_dim=embed_dim, vision=vision, text=text, **extra)


# Named architectures. The B/32, B/16 and L/14 shapes are OpenAI CLIP's; the small ones are for tests and the
# CPU demo (random weights, same code paths).
_REGISTRY: dict[str, ModelConfig] = {
    "vidla-b32": _clip(512, 224, 32, 768, 12, 512, 12),
    "vidla-b16": _clip(512, 224, 16, 768, 12, 512, 12),
    "vidla-l14": _clip(768, 224, 14, 1024, 24, 768, 12),
    "vidla-l14-336": _clip(768, 336, 14, 1024, 24, 768, 12),
    "vidla-small": _clip(256, 112, 16, 256, 4, 256, 4),
    "vidla-demo": _clip(128, 32, 8, 128, 4, 128, 4),
    "vidla-tiny": _clip(64, 32, 8, 64, 2, 64, 2),
}


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def get_model_config(name: str) -> ModelConfig:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return copy.deepcopy(_REGISTRY[name])

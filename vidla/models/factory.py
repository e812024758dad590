"""One constructor per use: `create_model` (an architecture by name) and `load_model` (any checkpoint)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from vidla.io import atomic_write
from vidla.models.checkpoints import VIDLA_CONFIG_KEY, CheckpointError, LoadedCheckpoint, read_checkpoint
from vidla.models.config import ModelConfig, get_model_config
from vidla.models.tokenizer import CLIPTokenizer
from vidla.models.vidla import VidLA

log = logging.getLogger(__name__)
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_HF_FILES = ["config.json", "*.safetensors", "*.json", "merges.txt", "vocab.json"]


def create_model(name: str, temporal: str = "meanpool", num_frames: int = 12, pretrained: str | Path | None = None,
                 device: str | torch.device | None = None, **temporal_options: Any) -> VidLA:
    """Builds architecture `name` (see `list_models()`) with random weights; no download.

    With `pretrained`, the weights of that checkpoint are loaded into the named architecture (an error names
    any weight whose shape does not fit).
    """
    config = get_model_config(name)
    config.temporal, config.num_frames, config.temporal_options = temporal, num_frames, dict(temporal_options)
    if pretrained is None:
        return VidLA(config).to(device or "cpu")
    checkpoint = read_checkpoint(resolve_source(pretrained), base=config)
    model = VidLA(config, _tokenizer_for(checkpoint, config))
    _load_weights(model, checkpoint, str(pretrained))
    return model.to(device or "cpu")


def load_model(source: str | Path, temporal: str | None = None, num_frames: int | None = None,
               device: str | torch.device | None = None, dtype: torch.dtype | None = None,
               activation: str | None = None, vision_heads: int | None = None, text_heads: int | None = None,
               temporal_options: dict[str, Any] | None = None) -> VidLA:
    """Loads a model from a Hugging Face CLIP folder or hub id, an OpenAI CLIP `.pt`, an open_clip state dict,
    or a vidla checkpoint; the architecture is read from the weights.

    Overrides: `temporal`/`num_frames`/`temporal_options` choose the video design (new temporal parameters
    start from their CLIP-based initialisation); `activation` ("quick_gelu" for OpenAI weights, "gelu" for most
    open_clip LAION models) and the head counts, which weights cannot reveal, for OpenAI/open_clip files.
    """
    checkpoint = read_checkpoint(resolve_source(source))
    config = checkpoint.config
    if checkpoint.format in ("openai", "open_clip") and activation is None:
        log.info("%s: assuming CLIP's QuickGELU activation; pass activation='gelu' for open_clip models "
                 "trained with GELU", source)
    for tower in (config.vision, config.text):
        tower.activation = activation or tower.activation
    config.vision.heads = vision_heads or config.vision.heads
    config.text.heads = text_heads or config.text.heads
    if temporal is not None and temporal != config.temporal:
        checkpoint.state_dict = {k: v for k, v in checkpoint.state_dict.items() if not k.startswith("temporal.")}
        config.temporal, config.temporal_options = temporal, {}
    config.num_frames = num_frames or config.num_frames
    config.temporal_options.update(temporal_options or {})
    model = VidLA(config, _tokenizer_for(checkpoint, config))
    _load_weights(model, checkpoint, str(source))
    return model.to(device=device or "cpu", dtype=dtype)


def save_model(model: VidLA, path: str | Path) -> Path:
    """Writes a vidla checkpoint: one safetensors file whose metadata holds the model config."""
    return save_state_dict(model.state_dict(), model.config, path)


def save_state_dict(state: dict[str, torch.Tensor], config: Any, path: str | Path,
                    config_key: str = VIDLA_CONFIG_KEY, file_format: str = "vidla") -> Path:
    """Writes vidla-layout weights and their config as a vidla checkpoint (atomically). `config_key` and
    `file_format` name another kind of model (a text student) in the metadata, so `load_model` never
    mistakes it for a VidLA model."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    metadata = {config_key: json.dumps(asdict(config)), "format": file_format}
    with atomic_write(path, "wb") as f:
        f.write(save(tensors, metadata=metadata))
    return path


def resolve_source(source: str | Path) -> Path:
    """A local path, or a Hugging Face hub id fetched with huggingface_hub when the user has network access."""
    path = Path(source).expanduser()
    if path.exists() or not _HUB_ID.match(str(source)):
        if not path.exists():
            raise FileNotFoundError(f"{source}: no such file or folder")
        return path
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise FileNotFoundError(f"{source}: not a local path; to fetch it from the Hugging Face hub install "
                                "huggingface_hub (pip install 'vidla[hub]')") from e
    try:
        return Path(snapshot_download(str(source), allow_patterns=_HF_FILES))
    except Exception as e:
        raise FileNotFoundError(f"{source}: not a local path, and the hub download failed: {e}") from e


def _tokenizer_for(checkpoint: LoadedCheckpoint, config: ModelConfig) -> CLIPTokenizer:
    context = config.text.context_length
    if checkpoint.tokenizer_dir is not None:
        tokenizer = CLIPTokenizer.from_directory(checkpoint.tokenizer_dir, context)
    else:
        tokenizer = CLIPTokenizer.default(context)
    if tokenizer.vocab_size > config.text.vocab_size:
        raise CheckpointError(f"the tokenizer has {tokenizer.vocab_size} tokens but the text tower only "
                              f"{config.text.vocab_size} embeddings")
    config.text.eot_token_id = tokenizer.eot_token_id
    return tokenizer


def _resample_frame_tables(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict:
    """Per-frame position tables saved for another frame count are linearly resampled to the model's."""
    from vidla.models.temporal.layers import resample_frames

    out = dict(state)
    for key, value in state.items():
        if key.endswith("positions.table") and key in expected and value.shape[1:] == expected[key].shape[1:]:
            out[key] = resample_frames(value, expected[key].shape[0])
    return out


def _load_weights(model: VidLA, checkpoint: LoadedCheckpoint, source: str) -> None:
    """Copies checkpoint weights into `model`, naming every key that is missing, unknown or of the wrong shape.
    Temporal parameters absent from the checkpoint keep the design's CLIP-based initialisation."""
    expected = model.state_dict()
    state = _resample_frame_tables(checkpoint.state_dict, expected)
    unexpected = sorted(k for k in state if k not in expected)
    missing = sorted(k for k in expected if k not in state and not k.startswith("temporal."))
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
                  for k in state if k in expected and state[k].shape != expected[k].shape]
    if mismatched:
        raise CheckpointError(f"{source}: weights do not fit the architecture: " + "; ".join(mismatched[:5]))
    if unexpected or missing:
        raise CheckpointError(f"{source}: weights do not fit the architecture "
                              f"(unexpected: {unexpected[:5]}, missing: {missing[:5]})")
    with torch.no_grad():
        for key, value in state.items():
            expected[key].copy_(value)
    if not any(k.startswith("temporal.") for k in state):
        model.temporal.init_from_clip(model.visual)

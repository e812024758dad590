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
from vidla.config import from_dict
from vidla.models.config import FrameSelectionConfig, ModelConfig, get_model_config
from vidla.models.tokenizer import CLIPTokenizer
from vidla.models.vidla import VidLA

log = logging.getLogger(__name__)
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_HF_FILES = ["config.json", "*.safetensors", "*.json", "merges.txt", "vocab.json"]


def create_model(name: str, temporal: str = "meanpool", num_frames: int = 12, pretrained: str | Path | None = None,
                 device: str | torch.device | None = None, tokenizer: Any = None,
                 frame_selection: FrameSelectionConfig | dict[str, Any] | None = None,
                 **temporal_options: Any) -> VidLA:
    """Builds architecture `name` (see `list_models()`) with random weights; no download.

    `frame_selection` (a `FrameSelectionConfig` or its fields as a dict, e.g. {"segments": 4}) adds a key-frame
    selector: the model then takes `num_frames` candidate frames and encodes one per segment.

    With `pretrained`, the weights of that checkpoint are loaded into the named architecture (an error names
    any weight whose shape does not fit). `tokenizer`: as for `load_model`.
    """
    config = get_model_config(name)
    config.temporal, config.num_frames, config.temporal_options = temporal, num_frames, dict(temporal_options)
    config.frame_selection = _frame_selection(frame_selection)
    if pretrained is None:
        return VidLA(config, _tokenizer_for(None, config, tokenizer) if tokenizer is not None else None).to(
            device or "cpu")
    checkpoint = read_checkpoint(resolve_source(pretrained), base=config)
    model = VidLA(config, _tokenizer_for(checkpoint, config, tokenizer))
    _load_weights(model, checkpoint, str(pretrained), new_temporal=checkpoint.config.temporal != temporal)
    return model.to(device or "cpu")


def load_model(source: str | Path, temporal: str | None = None, num_frames: int | None = None,
               device: str | torch.device | None = None, dtype: torch.dtype | None = None,
               activation: str | None = None, vision_heads: int | None = None, text_heads: int | None = None,
               temporal_options: dict[str, Any] | None = None, tokenizer: Any = None) -> VidLA:
    """Loads a model from a Hugging Face CLIP folder or hub id, an OpenAI CLIP `.pt`, an open_clip state dict,
    or a vidla checkpoint; the architecture is read from the weights.

    Overrides: `temporal`/`num_frames`/`temporal_options` choose the video design (new temporal parameters
    start from their CLIP-based initialisation); `activation` ("quick_gelu" for OpenAI weights, "gelu" for most
    open_clip LAION models) and the head counts, which weights cannot reveal, for OpenAI/open_clip files.

    `tokenizer`, for checkpoints whose vocabulary is not CLIP's (and vidla checkpoints trained with one, which do
    not store it): a folder of tokenizer files (vocab.json + merges.txt, or tokenizer.json), or an object called as
    `tokenizer(texts, context_length) -> LongTensor[B, context_length]` with `vocab_size` and `eot_token_id`.
    By default: the tokenizer files beside the weights, else CLIP's own.
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
    new_temporal = temporal is not None and temporal != config.temporal
    if new_temporal:
        checkpoint.state_dict = {k: v for k, v in checkpoint.state_dict.items() if not k.startswith("temporal.")}
        config.temporal, config.temporal_options = temporal, {}
    config.num_frames = num_frames or config.num_frames
    config.temporal_options.update(temporal_options or {})
    model = VidLA(config, _tokenizer_for(checkpoint, config, tokenizer))
    _load_weights(model, checkpoint, str(source), new_temporal)
    return model.to(device=device or "cpu", dtype=dtype)


def _frame_selection(value: FrameSelectionConfig | dict[str, Any] | None) -> FrameSelectionConfig | None:
    if value is None or isinstance(value, FrameSelectionConfig):
        return value
    return from_dict(FrameSelectionConfig, value, "frame_selection.")


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


def _tokenizer_for(checkpoint: LoadedCheckpoint | None, config: ModelConfig, tokenizer: Any = None) -> Any:
    """The given tokenizer (an object or a folder of files), else the checkpoint's files, else CLIP's; checked
    against the text tower's embedding table, whose end-of-text id it sets."""
    context = config.text.context_length
    if isinstance(tokenizer, (str, Path)):
        tokenizer = CLIPTokenizer.from_directory(tokenizer, context)
    elif tokenizer is not None:
        missing = [name for name in ("vocab_size", "eot_token_id") if not hasattr(tokenizer, name)]
        if missing or not callable(tokenizer):
            raise TypeError(f"tokenizer= needs a folder of tokenizer files or a callable with vocab_size and "
                            f"eot_token_id; {type(tokenizer).__name__} lacks {missing or ['__call__']}")
    elif checkpoint is not None and checkpoint.tokenizer_dir is not None:
        tokenizer = CLIPTokenizer.from_directory(checkpoint.tokenizer_dir, context)
    else:
        tokenizer = CLIPTokenizer.default(context)
    if tokenizer.vocab_size > config.text.vocab_size:
        raise CheckpointError(f"the tokenizer has {tokenizer.vocab_size} tokens but the text tower only "
                              f"{config.text.vocab_size} embeddings; pass the checkpoint's own tokenizer "
                              f"(load_model(..., tokenizer=FOLDER))")
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


def _load_weights(model: VidLA, checkpoint: LoadedCheckpoint, source: str, new_temporal: bool = False) -> None:
    """Copies checkpoint weights into `model`, naming every key that is missing, unknown or of the wrong shape.

    Temporal parameters start from the design's CLIP-based initialisation only when the checkpoint has none of
    them and is not a vidla checkpoint of this very design (CLIP weights, or another design asked for on purpose):
    a vidla checkpoint missing some of its own temporal tensors is an error, never a silent re-initialisation."""
    expected = model.state_dict()
    state = _resample_frame_tables(checkpoint.state_dict, expected)
    has_temporal = any(k.startswith("temporal.") for k in state)
    own_design = checkpoint.format == "vidla" and not new_temporal
    unexpected = sorted(k for k in state if k not in expected)
    # new parameters a checkpoint has none of start from their initialisation: temporal ones as above, and a
    # frame selector (a checkpoint with part of one is an error like any other missing key)
    has_selector = any(k.startswith("frame_selector.") for k in state)
    missing = sorted(k for k in expected if k not in state
                     and (has_temporal or own_design or not k.startswith("temporal."))
                     and (has_selector or not k.startswith("frame_selector.")))
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
                  for k in state if k in expected and state[k].shape != expected[k].shape]
    if mismatched:
        raise CheckpointError(f"{source}: weights do not fit the architecture: " + "; ".join(mismatched[:5]))
    if unexpected or missing:
        raise CheckpointError(f"{source}: weights do not fit the architecture "
                              f"(unexpected: {unexpected[:5]}, missing: {missing[:5]}"
                              f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''})")
    with torch.no_grad():
        for key, value in state.items():
            expected[key].copy_(value)
    if not has_temporal:
        model.temporal.init_from_clip(model.visual)

"""Reading CLIP checkpoints in their native formats, without executing pickled code.

Formats (detected from the files, not from their names):
- a Hugging Face CLIP folder: config.json + model.safetensors (or sharded, or pytorch_model.bin);
- an OpenAI CLIP `.pt`: a TorchScript archive (read as a zip of tensors by a restricted unpickler, never
  through `torch.jit.load`) or a plain state dict;
- an open_clip state dict (`.pt`/`.bin`/`.safetensors`, optionally wrapped in {"state_dict": ...} with a
  `module.` prefix, text keys at the top level or under `text.`);
- vidla's own `.safetensors` checkpoints, which carry their model config in the file's metadata.

Everything is converted to vidla's layout: `visual.*`, `text.*`, `temporal.*`, `logit_scale`.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vidla.errors import VidlaError
from vidla.models.config import ModelConfig, TextConfig, VisionConfig

StateDict = dict[str, torch.Tensor]

VIDLA_CONFIG_KEY = "vidla_config"
_TEXT_KEYS = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")
# Keys that OpenAI/open_clip files carry but that are not weights (masks rebuilt on the fly, JIT metadata).
_IGNORED = re.compile(r"(^|\.)(attn_mask|input_resolution|context_length|vocab_size|position_ids)$")


class CheckpointError(VidlaError, ValueError):
    """A checkpoint that cannot be read or does not fit; the message names the file and the fault."""


@dataclass
class LoadedCheckpoint:
    state_dict: StateDict
    config: ModelConfig
    format: str
    tokenizer_dir: Path | None = None


# ----------------------------------------------------------------------------------------- raw file reading

def read_tensors(path: Path) -> tuple[StateDict | dict[str, Any], dict[str, str]]:
    """Reads a weights file into a dict; returns (contents, safetensors metadata)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file")
    with path.open("rb") as f:
        head = f.read(9)
    try:
        if _looks_like_safetensors(path, head):
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if _is_torchscript(archive):
                    return _read_torchscript(archive), {}
        return torch.load(path, map_location="cpu", weights_only=True), {}
    except CheckpointError:
        raise
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: refused or unreadable pickle (vidla never runs pickled code): {e}") from e
    except Exception as e:  # truncation and corruption surface as many different exception types
        raise CheckpointError(f"{path}: corrupt, truncated or unknown checkpoint format "
                              f"({type(e).__name__}: {e})") from e


def _looks_like_safetensors(path: Path, head: bytes) -> bool:
    # safetensors starts with a little-endian u64 header length followed by the JSON header's '{'
    return path.suffix == ".safetensors" or (len(head) == 9 and head[8:9] == b"{"
                                              and int.from_bytes(head[:8], "little") < 100_000_000)


def _is_torchscript(archive: zipfile.ZipFile) -> bool:
    names = archive.namelist()
    return any(n.endswith("/constants.pkl") for n in names) or any("/code/" in n for n in names)


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class _ScriptObject:
    """Stands in for a TorchScript module class: keeps the attribute dict, runs nothing."""

    def __init__(self, *args: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *args: Any) -> torch.Tensor:
    return storage.as_strided(size, stride, offset)


class _RestrictedUnpickler(pickle.Unpickler):
    """Reads a TorchScript archive's data.pkl: tensors and module attributes, nothing callable."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
        super().__init__(__import__("io").BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            return _ScriptObject
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "torch.jit._pickle" and name.startswith("build_"):
            return lambda value: value
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        kind, dtype, key, _location, numel = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        raw = bytearray(self.archive.read(f"{self.prefix}/data/{key}"))
        tensor = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        if tensor.numel() != numel:
            raise CheckpointError(f"storage {key}: {tensor.numel()} elements, expected {numel}")
        return tensor


def _read_torchscript(archive: zipfile.ZipFile) -> StateDict:
    data_pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
    prefix = data_pkl[: -len("/data.pkl")]
    root = _RestrictedUnpickler(archive.read(data_pkl), archive, prefix).load()
    state: StateDict = {}

    def walk(obj: Any, name: str) -> None:
        for key, value in getattr(obj, "state", {}).items():
            if isinstance(value, torch.Tensor):
                state[name + key] = value.clone()
            elif isinstance(value, _ScriptObject):
                walk(value, f"{name}{key}.")

    walk(root, "")
    return state


# ----------------------------------------------------------------------------------------- layout conversion

def unwrap_state_dict(obj: Any, path: Path) -> StateDict:
    """Takes the weights out of training-checkpoint wrappers and strips DDP's `module.` prefix."""
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return {k: v for k, v in obj.items() if not _IGNORED.search(k)}


def openai_to_vidla(state: StateDict) -> StateDict:
    """OpenAI / open_clip CLIP keys -> vidla's: text keys move under `text.`."""
    out = {}
    for key, value in state.items():
        if key.startswith(_TEXT_KEYS):
            key = "text." + key
        out[key] = value
    return out


def hf_to_vidla(state: StateDict) -> StateDict:
    """Hugging Face CLIPModel keys -> vidla's (q/k/v fused, Linear projections transposed)."""
    out: StateDict = {}
    layer = re.compile(r"^(text|vision)_model\.encoder\.layers\.(\d+)\.(.+)$")
    renames = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
               "self_attn.out_proj": "attn.out_proj"}
    fixed = {
        "text_model.embeddings.token_embedding.weight": "text.token_embedding.weight",
        "text_model.embeddings.position_embedding.weight": "text.positional_embedding",
        "text_model.final_layer_norm.weight": "text.ln_final.weight",
        "text_model.final_layer_norm.bias": "text.ln_final.bias",
        "vision_model.embeddings.class_embedding": "visual.class_embedding",
        "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
        "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
        "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",
        "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
        "vision_model.post_layernorm.weight": "visual.ln_post.weight",
        "vision_model.post_layernorm.bias": "visual.ln_post.bias",
        "logit_scale": "logit_scale",
    }
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key in fixed:
            out[fixed[key]] = value
        elif key == "text_projection.weight":
            out["text.text_projection"] = value.T.contiguous()
        elif key == "visual_projection.weight":
            out["visual.proj"] = value.T.contiguous()
        elif match := layer.match(key):
            tower, index, rest = match.groups()
            prefix = f"{'text' if tower == 'text' else 'visual'}.transformer.resblocks.{index}."
            if m := re.match(r"self_attn\.([qkv])_proj\.(weight|bias)$", rest):
                qkv.setdefault((prefix, m.group(2)), {})[m.group(1)] = value
                continue
            for old, new in renames.items():
                if rest.startswith(old + "."):
                    rest = new + rest[len(old):]
                    break
            out[prefix + rest] = value
        elif not _IGNORED.search(key):
            out["unexpected:" + key] = value
    for (prefix, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise CheckpointError(f"incomplete q/k/v projections for {prefix}")
        out[f"{prefix}attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


# ----------------------------------------------------------------------------------------- architecture inference

def infer_config(state: StateDict, base: ModelConfig | None = None) -> ModelConfig:
    """A model config from vidla-layout CLIP weights. Head counts cannot be read from weights: CLIP's rule
    (width / 64) is used, and `load_model(..., vision_heads=, text_heads=)` overrides it."""
    base = base or ModelConfig()
    if "visual.conv1.weight" not in state:
        if any(k.startswith("visual.layer1") or k.startswith("visual.attnpool") for k in state):
            raise CheckpointError("ResNet CLIP backbones are not supported: VidLA's video tower is a ViT")
        raise CheckpointError("no vision transformer weights (visual.conv1.weight) found")
    conv = state["visual.conv1.weight"]
    v_width, patch = conv.shape[0], conv.shape[-1]
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    t_width = state["text.ln_final.weight"].shape[0]
    vision = VisionConfig(
        image_size=patch * grid, patch_size=patch, width=v_width,
        layers=_count_layers(state, "visual.transformer.resblocks."),
        heads=max(1, v_width // 64),
        mlp_dim=state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        activation=base.vision.activation, layer_norm_eps=base.vision.layer_norm_eps)
    text = TextConfig(
        context_length=state["text.positional_embedding"].shape[0],
        vocab_size=state["text.token_embedding.weight"].shape[0], width=t_width,
        layers=_count_layers(state, "text.transformer.resblocks."),
        heads=max(1, t_width // 64),
        mlp_dim=state["text.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        activation=base.text.activation, layer_norm_eps=base.text.layer_norm_eps,
        eot_token_id=base.text.eot_token_id)
    return ModelConfig(embed_dim=state["text.text_projection"].shape[1], vision=vision, text=text,
                       temporal=base.temporal, num_frames=base.num_frames,
                       temporal_options=dict(base.temporal_options), logit_scale_init=base.logit_scale_init)


def _count_layers(state: StateDict, prefix: str) -> int:
    indices = {int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)}
    return max(indices) + 1 if indices else 0


def hf_config_to_model_config(config: dict[str, Any], path: Path) -> ModelConfig:
    try:
        v, t = config["vision_config"], config["text_config"]
        vision = VisionConfig(image_size=v["image_size"], patch_size=v["patch_size"], width=v["hidden_size"],
                              layers=v["num_hidden_layers"], heads=v["num_attention_heads"],
                              mlp_dim=v["intermediate_size"], activation=v.get("hidden_act", "quick_gelu"),
                              layer_norm_eps=v.get("layer_norm_eps", 1e-5))
        eos = t.get("eos_token_id", 49407)
        text = TextConfig(context_length=t.get("max_position_embeddings", 77), vocab_size=t["vocab_size"],
                          width=t["hidden_size"], layers=t["num_hidden_layers"], heads=t["num_attention_heads"],
                          mlp_dim=t["intermediate_size"], activation=t.get("hidden_act", "quick_gelu"),
                          layer_norm_eps=t.get("layer_norm_eps", 1e-5),
                          # eos id 2 marks old configs whose pooling is argmax, i.e. the highest id
                          eot_token_id=t["vocab_size"] - 1 if eos == 2 else eos)
        return ModelConfig(embed_dim=config.get("projection_dim", 512), vision=vision, text=text,
                           logit_scale_init=config.get("logit_scale_init_value", 2.6592))
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: not a CLIP config.json (missing {e})") from e


# ----------------------------------------------------------------------------------------- format dispatch

def read_checkpoint(source: Path, base: ModelConfig | None = None) -> LoadedCheckpoint:
    """Reads any supported checkpoint at a local path into vidla's layout and config."""
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    if source.is_dir():
        return _read_hf_directory(source)
    contents, metadata = read_tensors(source)
    if VIDLA_CONFIG_KEY in metadata:
        config = ModelConfig.from_dict(json.loads(metadata[VIDLA_CONFIG_KEY]))
        return LoadedCheckpoint(unwrap_state_dict(contents, source), config, "vidla")
    state = unwrap_state_dict(contents, source)
    if any(k.startswith(("text_model.", "vision_model.")) for k in state):
        raise CheckpointError(f"{source}: Hugging Face CLIP weights need their config.json: "
                              "pass the folder that holds both")
    if any(k.startswith("text.") for k in state):
        fmt, converted = "open_clip", state  # open_clip's CustomTextCLIP layout is already vidla's
    elif "visual.conv1.weight" in state or "visual.layer1.0.conv1.weight" in state:
        fmt, converted = "openai", openai_to_vidla(state)
    else:
        raise CheckpointError(f"{source}: unknown checkpoint format: no CLIP weights found "
                              f"(first keys: {list(state)[:5]})")
    try:
        config = infer_config(converted, base)
    except (KeyError, IndexError) as e:
        raise CheckpointError(f"{source}: incomplete CLIP weights (missing {e})") from e
    except CheckpointError as e:
        raise CheckpointError(f"{source}: {e}") from e
    return LoadedCheckpoint(converted, config, fmt)


def _read_hf_directory(folder: Path) -> LoadedCheckpoint:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: missing (a Hugging Face CLIP folder needs config.json)")
    try:
        config_json = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{config_path}: not valid JSON ({e})") from e
    config = hf_config_to_model_config(config_json, config_path)
    state: StateDict = {}
    for file in _hf_weight_files(folder):
        contents, _ = read_tensors(file)
        state.update(unwrap_state_dict(contents, file))
    converted = hf_to_vidla(state)
    unexpected = [k[len("unexpected:"):] for k in converted if k.startswith("unexpected:")]
    if unexpected:
        raise CheckpointError(f"{folder}: weights that are not CLIP's: {unexpected[:5]}")
    has_tokenizer = (folder / "vocab.json").is_file() or (folder / "tokenizer.json").is_file()
    return LoadedCheckpoint(converted, config, "huggingface", folder if has_tokenizer else None)


def _hf_weight_files(folder: Path) -> list[Path]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [folder / s for s in shards]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return [folder / name]
    raise FileNotFoundError(f"{folder}: no model.safetensors or pytorch_model.bin beside config.json")

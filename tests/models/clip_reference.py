"""Tiny random CLIP models built with Hugging Face transformers (the reference implementation), and the same
weights rewritten in OpenAI's and open_clip's key layouts by an independent mapping written here."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel
from transformers import CLIPTokenizer as HFCLIPTokenizer

from vidla.models.tokenizer import _bundled_vocab


def hf_config(activation: str = "quick_gelu", v_width: int = 64, v_heads: int = 2, t_width: int = 64,
              t_heads: int = 2, projection_dim: int = 40, image_size: int = 32, patch: int = 8) -> CLIPConfig:
    text = dict(vocab_size=49408, hidden_size=t_width, intermediate_size=3 * t_width, num_hidden_layers=2,
                num_attention_heads=t_heads, max_position_embeddings=77, hidden_act=activation,
                bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    vision = dict(hidden_size=v_width, intermediate_size=3 * v_width, num_hidden_layers=2,
                  num_attention_heads=v_heads, image_size=image_size, patch_size=patch, hidden_act=activation)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)


def build_hf_clip(seed: int = 0, **kwargs) -> CLIPModel:
    torch.manual_seed(seed)
    model = CLIPModel(hf_config(**kwargs)).eval()
    with torch.no_grad():  # random, non-trivial values everywhere (LayerNorms and biases start at 1/0)
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


def write_tokenizer_files(folder: Path) -> HFCLIPTokenizer:
    vocab, merges = _bundled_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n",
                                       encoding="utf-8")
    return HFCLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))


def save_hf_folder(model: CLIPModel, folder: Path, safe: bool = True) -> Path:
    model.save_pretrained(folder)
    if not safe:  # the older pytorch_model.bin layout (a pickled state dict)
        (folder / "model.safetensors").unlink()
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    write_tokenizer_files(folder)
    return folder


def to_openai_state_dict(model: CLIPModel) -> dict[str, torch.Tensor]:
    """The model's weights under OpenAI CLIP's names (clip/model.py), q/k/v fused as nn.MultiheadAttention."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = {
        "token_embedding.weight": sd["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": sd["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": sd["text_model.final_layer_norm.weight"],
        "ln_final.bias": sd["text_model.final_layer_norm.bias"],
        "text_projection": sd["text_projection.weight"].T.contiguous(),
        "visual.class_embedding": sd["vision_model.embeddings.class_embedding"],
        "visual.conv1.weight": sd["vision_model.embeddings.patch_embedding.weight"],
        "visual.positional_embedding": sd["vision_model.embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": sd["vision_model.pre_layrnorm.weight"],
        "visual.ln_pre.bias": sd["vision_model.pre_layrnorm.bias"],
        "visual.ln_post.weight": sd["vision_model.post_layernorm.weight"],
        "visual.ln_post.bias": sd["vision_model.post_layernorm.bias"],
        "visual.proj": sd["visual_projection.weight"].T.contiguous(),
        "logit_scale": sd["logit_scale"],
    }
    for tower, prefix in (("text_model", "transformer"), ("vision_model", "visual.transformer")):
        layers = model.config.text_config.num_hidden_layers if tower == "text_model" else \
            model.config.vision_config.num_hidden_layers
        for i in range(layers):
            src, dst = f"{tower}.encoder.layers.{i}.", f"{prefix}.resblocks.{i}."
            for kind in ("weight", "bias"):
                out[dst + f"attn.in_proj_{kind}"] = torch.cat(
                    [sd[src + f"self_attn.{p}_proj.{kind}"] for p in "qkv"])
                out[dst + f"attn.out_proj.{kind}"] = sd[src + f"self_attn.out_proj.{kind}"]
                out[dst + f"ln_1.{kind}"] = sd[src + f"layer_norm1.{kind}"]
                out[dst + f"ln_2.{kind}"] = sd[src + f"layer_norm2.{kind}"]
                out[dst + f"mlp.c_fc.{kind}"] = sd[src + f"mlp.fc1.{kind}"]
                out[dst + f"mlp.c_proj.{kind}"] = sd[src + f"mlp.fc2.{kind}"]
    return out


class _Holder(torch.nn.Module):
    """Registers tensors under dotted names, to write a TorchScript archive with OpenAI's module tree."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        super().__init__()
        children: dict[str, dict[str, torch.Tensor]] = {}
        for name, value in tensors.items():
            head, _, rest = name.partition(".")
            if rest:
                children.setdefault(head, {})[rest] = value
            else:
                self.register_parameter(head, torch.nn.Parameter(value, requires_grad=False))
        for head, sub in children.items():
            self.add_module(head, _Holder(sub))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def save_openai_torchscript(state: dict[str, torch.Tensor], path: Path) -> Path:
    """An OpenAI-style TorchScript archive (clip.load(jit=True) files), with the JIT metadata buffers."""
    holder = _Holder(state)
    holder.register_buffer("input_resolution", torch.tensor(224))
    holder.register_buffer("context_length", torch.tensor(77))
    holder.register_buffer("vocab_size", torch.tensor(49408))
    torch.jit.save(torch.jit.script(holder), str(path))
    return path


def hf_text_features(model: CLIPModel, tokenizer: HFCLIPTokenizer, texts: list[str]) -> torch.Tensor:
    batch = tokenizer(texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
    out = model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def hf_image_features(model: CLIPModel, pixels: torch.Tensor) -> torch.Tensor:
    out = model.get_image_features(pixel_values=pixels)
    return out if isinstance(out, torch.Tensor) else out.pooler_output

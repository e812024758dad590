"""The text-only student: a bidirectional transformer encoder on CLIP's tokens, with a masked-LM head.

It is vidla's token encoder (`vidla.models.token_encoder`, the trunk of CLIP's text tower) run without the
causal mask, with a key-padding mask instead. CLIP's vocabulary has no [MASK] token, so the student's embedding
table has one more row than CLIP's: id 49408 is [MASK]. Inputs are CLIP-tokenised ([SOT] tokens [EOT], zero-padded);
the positions up to each row's first [EOT] are the valid ones (CLIP pads with id 0, which is also a real
token, so validity comes from the position, not the id).

Layout: pre-norm blocks (CLIP's), so the weights do not load into `transformers`' post-norm BertModel; the
student is saved as safetensors with its config in the metadata (`save_student` / `load_student`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidla.models.token_encoder import TokenEncoder
from vidla.models.transformer import LayerNorm, make_activation

STUDENT_CONFIG_KEY = "vidla_text_student_config"
STUDENT_FORMAT = "vidla-text-student"
CLIP_VOCAB_SIZE = 49408


@dataclass
class StudentConfig:
    width: int = 256
    layers: int = 4
    heads: int = 4
    mlp_dim: int = 1024
    activation: str = "gelu"
    layer_norm_eps: float = 1e-5
    context_length: int = 64              # tokens per text, [SOT] and [EOT] included
    vocab_size: int = CLIP_VOCAB_SIZE + 1  # CLIP's tokens + [MASK]
    mask_token_id: int = CLIP_VOCAB_SIZE
    sot_token_id: int = 49406
    eot_token_id: int = 49407


def valid_positions(token_ids: torch.Tensor, eot_token_id: int) -> torch.Tensor:
    """[B, L] bool: True up to and including each row's first end-of-text token (all True without one)."""
    is_eot = token_ids == eot_token_id
    last = torch.where(is_eot.any(-1), is_eot.int().argmax(-1), token_ids.shape[1] - 1)
    return torch.arange(token_ids.shape[1], device=token_ids.device)[None] <= last[:, None]


class TextStudent(TokenEncoder):
    """The shared token encoder run bidirectionally over each row's valid positions, with BERT's MLM head."""

    def __init__(self, config: StudentConfig):
        super().__init__(config)
        # BERT's MLM head: dense -> activation -> LayerNorm -> decoder tied to the token embedding (+ bias)
        self.mlm_dense = nn.Linear(config.width, config.width)
        self.mlm_activation = make_activation(config.activation)
        self.mlm_norm = LayerNorm(config.width, eps=config.layer_norm_eps)
        self.mlm_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.init_weights()

    def forward(self, token_ids: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L] ids -> [B, L, width] final hidden states; every position sees every valid position."""
        if valid is None:
            valid = valid_positions(token_ids, self.config.eot_token_id)
        # [B, 1 (heads), 1 (queries), L]: attend to valid keys only
        return self.token_states(token_ids, mask=valid[:, None, None, :])

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states [..., width] -> vocabulary logits [..., vocab_size]."""
        h = self.mlm_norm(self.mlm_activation(self.mlm_dense(hidden)))
        return F.linear(h, self.token_embedding.weight, self.mlm_bias)

    def encode(self, token_ids: torch.Tensor) -> torch.Tensor:
        """A text feature per row: the mean of its valid final hidden states, [B, width]."""
        valid = valid_positions(token_ids, self.config.eot_token_id)
        hidden = self(token_ids, valid)
        weights = valid.to(hidden.dtype)[..., None]
        return (hidden * weights).sum(1) / weights.sum(1)


def save_student(student: TextStudent, path: str | Path) -> Path:
    """One safetensors file: the student's weights, its config (and the tokenizer's name) in the metadata."""
    from vidla.models.factory import save_state_dict

    return save_state_dict(student.state_dict(), student.config, path, config_key=STUDENT_CONFIG_KEY,
                           file_format=STUDENT_FORMAT)


def is_student_file(path: str | Path) -> bool:
    path = Path(path)
    if not path.is_file():
        return False
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return STUDENT_CONFIG_KEY in (f.metadata() or {})
    except Exception:
        return False


def load_student(path: str | Path, device: str | torch.device = "cpu") -> TextStudent:
    """Reads a file written by `save_student`; an error names the file and what is wrong."""
    from safetensors import safe_open

    from vidla.config import from_dict

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from e
    if STUDENT_CONFIG_KEY not in metadata:
        raise ValueError(f"{path}: not a vidla text student (no {STUDENT_CONFIG_KEY!r} in its metadata)")
    student = TextStudent(from_dict(StudentConfig, json.loads(metadata[STUDENT_CONFIG_KEY])))
    missing, unexpected = student.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit the student's config (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    return student.to(device).eval()

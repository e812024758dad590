"""The frozen teacher: a trained vidla model's text tower, read per token.

What the teacher sees: VidLanKD feeds the teacher the student's masked input. vidla does the same by
default (`teacher_input="masked"`): the same corrupted ids (random replacements included); at [MASK]
positions, a token CLIP's vocabulary lacks, the teacher gets the mean of its token-embedding table (a
placeholder that carries no token identity). `teacher_input="original"` shows it the uncorrupted text
instead (the teacher's states at masked positions then reveal the hidden token).

CLIP's text tower is causal: the teacher's state at token i has seen tokens 0..i only, while the bidirectional
student sees the whole sentence; the teacher's last valid position ([EOT]) is the one that has read it all.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vidla.models.clip import TextTransformer

TEACHER_INPUTS = ("masked", "original")


class TextTeacher(nn.Module):
    def __init__(self, tower: TextTransformer, teacher_input: str = "masked"):
        super().__init__()
        if teacher_input not in TEACHER_INPUTS:
            raise ValueError(f"teacher_input must be one of {TEACHER_INPUTS}, got {teacher_input!r}")
        self.tower = tower.eval().requires_grad_(False)
        self.teacher_input = teacher_input
        self.train(False)

    @property
    def width(self) -> int:
        return self.tower.config.width

    @property
    def context_length(self) -> int:
        return self.tower.config.context_length

    def train(self, mode: bool = True) -> "TextTeacher":
        return super().train(False)  # frozen: always in inference mode

    @torch.no_grad()
    def forward(self, original_ids: torch.Tensor, corrupted_ids: torch.Tensor,
                masked: torch.Tensor) -> torch.Tensor:
        """Per-token hidden states [B, L, width] of the teacher's view of the batch (see the module doc)."""
        if self.teacher_input == "original":
            return self.tower.token_states(original_ids)
        table = self.tower.token_embedding.weight
        embeddings = self.tower.token_embedding(corrupted_ids.masked_fill(masked, 0))
        embeddings = torch.where(masked[..., None], table.mean(0).to(embeddings.dtype), embeddings)
        return self.tower.token_states(embeddings=embeddings)


def load_teacher(source: str | Path, teacher_input: str = "masked",
                 device: str | torch.device = "cpu") -> TextTeacher:
    """The text tower of any checkpoint `vidla.load_model` reads, frozen."""
    import vidla

    model = vidla.load_model(source, device=device)
    return TextTeacher(model.text, teacher_input)

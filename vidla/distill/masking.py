"""BERT's masked-language-model corruption on CLIP-tokenised text.

Of the valid, non-special tokens, each is chosen with probability `rate` (15%); a chosen token becomes [MASK]
with probability `mask_share` (80%), a random regular token with `random_share` (10%), and stays unchanged
otherwise (10%). The model must predict the original token at every chosen position (label = original id;
-100 elsewhere, the ignore index of cross-entropy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass
class MaskingConfig:
    rate: float = 0.15
    mask_share: float = 0.8
    random_share: float = 0.1

    def validate(self) -> None:
        if not 0 < self.rate <= 1:
            raise ValueError(f"masking.rate must be in (0, 1], got {self.rate}")
        if self.mask_share < 0 or self.random_share < 0 or self.mask_share + self.random_share > 1:
            raise ValueError(f"masking.mask_share + random_share must lie in [0, 1], got {self.mask_share} + "
                             f"{self.random_share}")


@dataclass
class MaskedBatch:
    token_ids: torch.Tensor   # the corrupted input, [B, L]
    labels: torch.Tensor      # original id at chosen positions, IGNORE elsewhere
    masked: torch.Tensor      # bool: positions showing [MASK]


def mask_tokens(token_ids: torch.Tensor, candidates: torch.Tensor, mask_token_id: int, num_regular_tokens: int,
                config: MaskingConfig, generator: torch.Generator | None = None) -> MaskedBatch:
    """Corrupts `token_ids` at `candidates` (bool [B, L]: the positions that may be chosen; special tokens and
    padding excluded). Random replacements are drawn uniformly from ids 0..num_regular_tokens-1."""
    shape = token_ids.shape
    chosen = (torch.rand(shape, generator=generator) < config.rate).to(token_ids.device) & candidates
    kind = torch.rand(shape, generator=generator).to(token_ids.device)
    to_mask = chosen & (kind < config.mask_share)
    to_random = chosen & (kind >= config.mask_share) & (kind < config.mask_share + config.random_share)
    random_ids = torch.randint(0, num_regular_tokens, shape, generator=generator).to(token_ids.device)
    corrupted = torch.where(to_mask, torch.full_like(token_ids, mask_token_id), token_ids)
    corrupted = torch.where(to_random, random_ids, corrupted)
    labels = torch.where(chosen, token_ids, torch.full_like(token_ids, IGNORE))
    return MaskedBatch(corrupted, labels, to_mask)

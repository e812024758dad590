"""BERT's masking rates, measured on a large sample against their stated values."""

from __future__ import annotations

import torch

from vidla.distill.masking import IGNORE, MaskingConfig, mask_tokens

MASK, REGULAR = 49408, 49406


def test_masking_follows_its_rates():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, REGULAR, (2000, 100), generator=g)
    candidates = torch.rand(ids.shape, generator=g) < 0.9   # 10% stand for padding / special tokens
    out = mask_tokens(ids, candidates, MASK, REGULAR, MaskingConfig(), torch.Generator().manual_seed(1))
    chosen = out.labels != IGNORE
    n = candidates.sum().item()                               # about 180,000 candidates
    # 5 binomial standard deviations: a wrong rate (e.g. 12% or 20%) is far outside
    assert abs(chosen.sum().item() / n - 0.15) < 5 * (0.15 * 0.85 / n) ** 0.5
    k = chosen.sum().item()
    masked = chosen & (out.token_ids == MASK)
    unchanged = chosen & (out.token_ids == ids)
    replaced = chosen & (out.token_ids != MASK) & (out.token_ids != ids)
    for part, share in [(masked, 0.8), (replaced, 0.1), (unchanged, 0.1)]:
        assert abs(part.sum().item() / k - share) < 5 * (share * (1 - share) / k) ** 0.5
    assert torch.equal(out.masked, masked)
    assert torch.equal(out.labels[chosen], ids[chosen])       # the label is the original token
    assert not chosen[~candidates].any()                      # never outside the candidates
    assert torch.equal(out.token_ids[~chosen], ids[~chosen])  # nothing else changes
    assert out.token_ids[replaced].max() < REGULAR             # random tokens are regular ones


def test_masking_is_reproducible_from_its_generator():
    ids = torch.randint(0, REGULAR, (8, 20), generator=torch.Generator().manual_seed(0))
    candidates = torch.ones_like(ids, dtype=torch.bool)
    a = mask_tokens(ids, candidates, MASK, REGULAR, MaskingConfig(), torch.Generator().manual_seed(3))
    b = mask_tokens(ids, candidates, MASK, REGULAR, MaskingConfig(), torch.Generator().manual_seed(3))
    assert torch.equal(a.token_ids, b.token_ids) and torch.equal(a.labels, b.labels)

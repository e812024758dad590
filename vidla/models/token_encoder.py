"""The trunk every vidla text encoder shares: token + learned position embeddings, vidla's Transformer, final norm.

CLIP's text tower (causal, pooled at [EOT], projected; `vidla.models.clip.TextTransformer`) and the distilled
text student (bidirectional, key-padding mask, masked-LM head; `vidla.distill.student.TextStudent`) subclass it.
It is a base class rather than a submodule so that parameter names stay OpenAI CLIP's (`token_embedding.weight`,
`transformer.resblocks.0...`, `ln_final.weight`) and existing checkpoints load by name.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from vidla.models.transformer import LayerNorm, Transformer


class TokenEncoderShape(Protocol):
    """The config fields the trunk reads (TextConfig and StudentConfig both have them)."""

    vocab_size: int
    context_length: int
    width: int
    layers: int
    heads: int
    mlp_dim: int
    activation: str
    layer_norm_eps: float


class TokenEncoder(nn.Module):
    causal = False  # True: position i attends to positions 0..i only (CLIP's text tower)

    def __init__(self, config: TokenEncoderShape):
        """Builds the trunk uninitialised: a subclass adds its own parameters, then calls `init_weights`."""
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.width))
        self.transformer = Transformer(config.width, config.layers, config.heads, config.mlp_dim,
                                       config.activation, config.layer_norm_eps)
        self.ln_final = LayerNorm(config.width, eps=config.layer_norm_eps)

    def init_weights(self) -> None:
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        self.init_head()  # drawn here, as before the trunk was shared: a seed still gives the same weights
        self.transformer.init_weights()

    def init_head(self) -> None:
        """A subclass's own parameters that need more than PyTorch's default initialisation."""

    def check_length(self, length: int) -> None:
        if length > self.config.context_length:
            raise ValueError(f"{length} tokens exceed the encoder's context of {self.config.context_length}")

    def token_states(self, token_ids: torch.Tensor | None = None, embeddings: torch.Tensor | None = None,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-token final hidden states (after ln_final), [B, L, width]. `embeddings` ([B, L, width]) replaces
        the token-embedding lookup, e.g. to show a token the vocabulary lacks. A causal encoder masks the future
        itself; a bidirectional one takes `mask` (bool, True = may attend, broadcastable to [B, heads, L, L])."""
        x = self.token_embedding(token_ids) if embeddings is None else embeddings
        self.check_length(x.shape[1])
        x = x + self.positional_embedding[: x.shape[1]]
        return self.ln_final(self.transformer(x, mask=mask, is_causal=self.causal))

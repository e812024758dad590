"""CLIP's two towers: the vision transformer (one image at a time) and the causal text transformer.

Parameter names are OpenAI CLIP's, so an OpenAI/open_clip state dict loads by name (text keys under `text.`).
"""

from __future__ import annotations

import torch
from torch import nn

from vidla.models.config import TextConfig, VisionConfig
from vidla.models.token_encoder import TokenEncoder
from vidla.models.transformer import LayerNorm, Transformer


class VisionTransformer(nn.Module):
    def __init__(self, config: VisionConfig, output_dim: int):
        super().__init__()
        self.config = config
        width = config.width
        self.conv1 = nn.Conv2d(3, width, kernel_size=config.patch_size, stride=config.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.positional_embedding = nn.Parameter(torch.empty(config.grid_size**2 + 1, width))
        self.ln_pre = LayerNorm(width, eps=config.layer_norm_eps)
        self.transformer = Transformer(width, config.layers, config.heads, config.mlp_dim, config.activation,
                                       config.layer_norm_eps)
        self.ln_post = LayerNorm(width, eps=config.layer_norm_eps)
        self.proj = nn.Parameter(torch.empty(width, output_dim))
        self.channels_last = False  # patch embedding on NHWC images (cuDNN's layout for bf16); an option
        self.init_weights()

    def init_weights(self) -> None:
        scale = self.config.width**-0.5
        nn.init.normal_(self.conv1.weight, std=0.02)
        nn.init.normal_(self.class_embedding, std=scale)
        nn.init.normal_(self.positional_embedding, std=scale)
        nn.init.normal_(self.proj, std=scale)
        self.transformer.init_weights()

    @property
    def num_patches(self) -> int:
        return self.config.grid_size**2

    def embed_patches(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> patch tokens with spatial position embedding, [B, N, width]."""
        size = self.config.image_size
        if images.shape[-2:] != (size, size):
            raise ValueError(f"expected {size}x{size} images, got {tuple(images.shape[-2:])}; "
                             "resize with vidla's preprocessing for this model")
        images = images.to(self.conv1.weight.dtype)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        x = self.conv1(images).flatten(2).transpose(1, 2)
        return x + self.positional_embedding[1:].to(x.dtype)

    def cls_token(self, batch: int, dtype: torch.dtype) -> torch.Tensor:
        """CLIP's [CLS] with its position embedding, [batch, 1, width]."""
        cls = (self.class_embedding + self.positional_embedding[0]).to(dtype)
        return cls.expand(batch, 1, -1)

    def project(self, cls: torch.Tensor) -> torch.Tensor:
        """Final [CLS] state -> embedding: ln_post then the projection."""
        return self.ln_post(cls) @ self.proj

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] CLIP-normalised images -> [B, output_dim] image features (unnormalised)."""
        patches = self.embed_patches(images)
        x = torch.cat([self.cls_token(patches.shape[0], patches.dtype), patches], dim=1)
        x = self.transformer(self.ln_pre(x))
        return self.project(x[:, 0])


class TextTransformer(TokenEncoder):
    """CLIP's text tower: the shared token encoder run causally, read at each row's [EOT] and projected."""

    causal = True

    def __init__(self, config: TextConfig, output_dim: int):
        super().__init__(config)
        self.text_projection = nn.Parameter(torch.empty(config.width, output_dim))
        self.init_weights()

    def init_head(self) -> None:
        nn.init.normal_(self.text_projection, std=self.config.width**-0.5)

    def eot_positions(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Index of the first end-of-text token per row (argmax of the ids where a row has none)."""
        is_eot = token_ids == self.config.eot_token_id
        return torch.where(is_eot.any(-1), is_eot.int().argmax(-1), token_ids.argmax(-1))

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """[B, L] token ids (L <= context_length) -> [B, output_dim] text features (unnormalised)."""
        self.check_length(token_ids.shape[1])
        eot = self.eot_positions(token_ids)
        # under the causal mask nothing after a row's end token reaches its feature: skip the padding columns
        x = self.token_states(token_ids[:, : int(eot.max()) + 1])
        pooled = x[torch.arange(x.shape[0], device=x.device), eot]
        return pooled @ self.text_projection

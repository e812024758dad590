import pytest
import torch

import vidla


def test_named_architectures_have_clip_shapes():
    b32 = vidla.create_model("vidla-b32")
    # OpenAI CLIP ViT-B/32 has 151.28M parameters (vision 87.85M, text 63.43M incl. embeddings)
    assert abs(sum(p.numel() for p in b32.parameters()) - 151_277_313) == 0
    assert b32.image_size == 224 and b32.config.embed_dim == 512
    with pytest.raises(ValueError, match="unknown model"):
        vidla.create_model("vidla-xxl")


def test_encode_shapes_and_meanpool_is_mean_of_frames():
    model = vidla.create_model("vidla-tiny", num_frames=3).eval()
    video = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        features = model.encode_video(video)
        frames = model.encode_image(video.flatten(0, 1)).unflatten(0, (2, 3))
        text = model.encode_text(["a", "b c", "d"])
    assert features.shape == (2, 64) and text.shape == (3, 64)
    assert torch.allclose(features, frames.mean(1), atol=1e-6)
    assert model.tokenizer is not None


def test_wrong_input_shapes_are_explained():
    model = vidla.create_model("vidla-tiny")
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"):
        model.encode_video(torch.randn(2, 3, 4, 32, 32))
    with pytest.raises(ValueError, match="32x32"):
        model.encode_video(torch.randn(1, 2, 3, 64, 64))


def test_forward_returns_scaled_logits_and_trains():
    model = vidla.create_model("vidla-tiny", num_frames=2)
    model.set_grad_checkpointing(True)
    logits, logits_t = model(torch.randn(2, 2, 3, 32, 32), ["one", "two"])
    assert logits.shape == (2, 2) and torch.equal(logits.T, logits_t)
    logits.logsumexp(1).sum().backward()
    assert model.visual.conv1.weight.grad is not None and model.text.token_embedding.weight.grad is not None

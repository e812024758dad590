"""Clip-level features from one pass of the video tower (LF-VILA's MTC input, SPEC 5.1), for every design."""

from __future__ import annotations

import pytest
import torch

import vidla
from vidla.models.temporal import TEMPORAL_DESIGNS

DESIGNS = sorted(TEMPORAL_DESIGNS)


def _perturb(model) -> None:
    """Random new temporal weights (they start as the identity), so the designs mix frames."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.temporal.named_parameters():
            p.add_(0.1 * torch.randn_like(p))


def per_frame_clip_reference(model, video: torch.Tensor, clips: int, layer: int) -> torch.Tensor:
    """Plain CLIP, frame by frame: the [CLS] after `layer` blocks, ln_post + projection, mean per clip."""
    vit = model.visual
    batch, frames = video.shape[:2]
    images = video.flatten(0, 1)
    x = vit.ln_pre(torch.cat([vit.cls_token(images.shape[0], images.dtype), vit.embed_patches(images)], dim=1))
    for block in vit.transformer.resblocks[:layer]:
        x = block(x)
    features = (vit.ln_post(x[:, 0]) @ vit.proj).view(batch, frames, -1)
    return features.view(batch, clips, frames // clips, -1).mean(dim=2)


@pytest.mark.parametrize("layer", [1, 2])
def test_meanpool_clip_features_are_plain_clip_per_clip(layer):
    torch.manual_seed(0)
    model = vidla.create_model("vidla-tiny", num_frames=8).eval()
    video = torch.randn(2, 8, 3, 32, 32)
    with torch.no_grad():
        video_features, clip_features = model.encode_video_clips(video, clips=4, layer=layer)
        assert torch.allclose(video_features, model.encode_video(video), atol=1e-6)
        expected = per_frame_clip_reference(model, video, 4, layer)
    assert clip_features.shape == (2, 4, 64)
    assert torch.allclose(clip_features, expected, atol=1e-5)


@pytest.mark.parametrize("design", DESIGNS)
def test_every_design_gives_clip_features_and_unchanged_video_features(design):
    torch.manual_seed(0)
    model = vidla.create_model("vidla-tiny", temporal=design, num_frames=8)
    _perturb(model)
    model.eval()
    video = torch.randn(2, 8, 3, 32, 32)
    with torch.no_grad():
        plain = model.encode_video(video)
        for layer in (None, 1):
            video_features, clip_features = model.encode_video_clips(video, clips=4, layer=layer)
            assert torch.allclose(video_features, plain, atol=1e-6)
            assert clip_features.shape == (2, 4, 64) and torch.isfinite(clip_features).all()
            # clips are told apart: they are not one repeated feature
            assert (clip_features[:, 0] - clip_features[:, 1]).abs().max() > 1e-4
        if design in ("meanpool", "divided", "htwa"):  # video = mean of its frames' = mean of its clips'
            assert torch.allclose(model.encode_video_clips(video, 2)[1].mean(dim=1), plain, atol=1e-5)


def test_clip_features_of_the_first_block_see_only_their_own_window():
    # htwa's first block attends within windows of 2 frames: with clips of 2 frames, clip 0's features after
    # block 1 do not depend on clip 1's frames; after the last block (global temporal attention) they do
    torch.manual_seed(0)
    model = vidla.create_model("vidla-demo", temporal="htwa", num_frames=8)
    _perturb(model)
    model.eval()
    video = torch.randn(1, 8, 3, 32, 32)
    changed = video.clone()
    changed[:, 2:4] = torch.randn(1, 2, 3, 32, 32)  # clip 1
    with torch.no_grad():
        first = [model.encode_video_clips(v, 4, layer=1)[1] for v in (video, changed)]
        last = [model.encode_video_clips(v, 4)[1] for v in (video, changed)]
    assert model.temporal.windows[0] == 2
    assert torch.allclose(first[0][:, 0], first[1][:, 0], atol=1e-6)
    assert (first[0][:, 1] - first[1][:, 1]).abs().max() > 1e-3
    assert (last[0][:, 0] - last[1][:, 0]).abs().max() > 1e-4


@pytest.mark.parametrize("design", ["hta", "htwa"])
def test_clip_features_with_checkpointing_and_gradients(design):
    torch.manual_seed(0)
    model = vidla.create_model("vidla-tiny", temporal=design, num_frames=4)
    _perturb(model)
    video = torch.randn(2, 4, 3, 32, 32)

    def grads():
        model.zero_grad()
        v, c = model.encode_video_clips(video, clips=2, layer=1)
        (v.sum() + c.pow(2).sum()).backward()
        return c.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain_clips, plain = grads()
    model.set_grad_checkpointing(True)
    checkpointed_clips, checkpointed = grads()
    assert torch.allclose(plain_clips, checkpointed_clips, atol=1e-6)
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-5), name


def test_clip_feature_errors():
    model = vidla.create_model("vidla-tiny", num_frames=6)
    video = torch.randn(1, 6, 3, 32, 32)
    with pytest.raises(ValueError, match="6 frames cannot be cut into 4 clips"):
        model.encode_video_clips(video, clips=4)
    with pytest.raises(ValueError, match="after a block 1..2, got layer 3"):
        model.encode_video_clips(video, clips=2, layer=3)
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"):
        model.encode_video_clips(video[0], clips=2)

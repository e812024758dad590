"""The temporal designs: HTA's mask and split computation, initialisation from CLIP, and the shared interface."""

from __future__ import annotations

import pytest
import torch

import vidla
from vidla.models.temporal import TEMPORAL_DESIGNS, hta_mask
from vidla.models.temporal.hta import hta_global_rows
from vidla.models.temporal.layers import dense_global_attention, global_query_mask, split_global_attention
from vidla.models.transformer import Attention

from clip_reference import build_hf_clip, save_hf_folder

DESIGNS = sorted(TEMPORAL_DESIGNS)


def test_spec_toy_mask_every_row():
    """SPEC 1.2 toy check: N=4, T=4, U=2, V=1, r=2; rows/cols = CLS, MST0, MST1, 16 patches."""
    mask = hta_mask(frames=4, patches=4, levels=2, per_level=1, stride=2)
    assert mask.shape == (19, 19)

    def cols(*, cls=False, mst=(), frames=()):
        row = torch.zeros(19, dtype=torch.bool)
        row[0] = cls
        for level in mst:
            row[1 + level] = True
        for f in frames:
            row[3 + 4 * f: 3 + 4 * f + 4] = True
        return row

    assert torch.equal(mask[0], cols(cls=True, mst=(0, 1), frames=(0, 1, 2, 3)))  # CLS sees everything
    assert torch.equal(mask[1], cols(mst=(0,), frames=(0, 1, 2, 3)))  # MST0: MST0 + all 16 patches
    assert torch.equal(mask[2], cols(mst=(0, 1), frames=(0, 2)))  # MST1: MST0, MST1 + frames 0 and 2
    for frame in range(4):
        for n in range(4):  # a patch sees MST0, MST1 and the 4 patches of its own frame
            assert torch.equal(mask[3 + 4 * frame + n], cols(mst=(0, 1), frames=(frame,)))


def test_mask_options():
    with_cls = hta_mask(4, 4, 2, 1, 2, patch_sees_cls=True)
    assert with_cls[3:, 0].all() and not hta_mask(4, 4, 2, 1, 2)[3:, 0].any()
    flat = hta_mask(4, 4, 2, 1, 2, hierarchy=False)
    assert flat[2, 3:].all()  # without hierarchy level 1 sees every frame
    assert hta_mask(4, 4, 2, 1, 2, mst_sees="all")[1, 1:3].all()  # level 0 sees level 1 too
    assert not hta_mask(4, 4, 2, 1, 2, mst_sees="same")[2, 1]
    rows, _ = hta_global_rows(frames=12, levels=3, per_level=4, stride=2)
    strided = [torch.nonzero(rows[1 + 4 * u, 13:]).flatten().tolist() for u in range(3)]
    assert strided == [list(range(12)), list(range(0, 12, 2)), [0, 4, 8]]  # SPEC: T=12, r=2
    with pytest.raises(ValueError, match="mst_sees"):
        hta_mask(4, 4, mst_sees="both")


@pytest.mark.parametrize("frames,patches,levels,per_level,stride", [
    (4, 4, 2, 1, 2), (12, 9, 3, 4, 2), (8, 16, 2, 4, 3), (5, 7, 1, 2, 2), (6, 4, 0, 1, 2)])
@pytest.mark.parametrize("patch_sees_cls", [False, True])
def test_split_equals_dense(frames, patches, levels, per_level, stride, patch_sees_cls):
    torch.manual_seed(0)
    attn = Attention(32, 4)
    torch.nn.init.normal_(attn.in_proj_weight, std=0.3)
    rows, sees = hta_global_rows(frames, levels, per_level, stride, patch_sees_cls=patch_sees_cls)
    h = torch.randn(3, rows.shape[0] + frames * patches, 32)
    mask = hta_mask(frames, patches, levels, per_level, stride, patch_sees_cls=patch_sees_cls)
    dense = dense_global_attention(attn, h, mask)
    split = split_global_attention(attn, h, global_query_mask(rows, rows.shape[0], patches), sees, frames)
    assert (dense - split).abs().max().item() <= 1e-5


def _perturb_new_weights(model):
    """Non-zero temporal output projections and positions, so the whole path is exercised."""
    with torch.no_grad():
        for name, p in model.temporal.named_parameters():
            p.add_(torch.randn_like(p) * 0.05)


@pytest.mark.parametrize("patch_sees_cls", [False, True])
def test_split_equals_dense_in_the_whole_tower(patch_sees_cls):
    torch.manual_seed(0)
    split = vidla.create_model("vidla-tiny", temporal="hta", num_frames=6, patch_sees_cls=patch_sees_cls).eval()
    _perturb_new_weights(split)
    dense = vidla.create_model("vidla-tiny", temporal="hta", num_frames=6, patch_sees_cls=patch_sees_cls,
                               attention="dense").eval()
    dense.load_state_dict(split.state_dict())
    video = torch.randn(2, 6, 3, 32, 32)
    with torch.no_grad():
        assert (split.encode_video(video) - dense.encode_video(video)).abs().max().item() <= 1e-5


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return save_hf_folder(build_hf_clip(seed=2), tmp_path_factory.mktemp("clip"))


def test_hta_from_clip_starts_as_identity_and_learns(clip_folder):
    model = vidla.load_model(clip_folder, temporal="hta", num_frames=4)
    first = model.temporal.temporal_layers[0]
    block = model.visual.transformer.resblocks[0]
    assert torch.equal(first.attn.in_proj_weight, block.attn.in_proj_weight)
    assert torch.equal(first.ln.weight, block.ln_1.weight)
    assert not first.attn.out_proj.weight.any()
    patches = torch.randn(2, 4, model.visual.num_patches, model.config.vision.width)
    assert torch.equal(first(patches), patches)  # zero-initialised output projection: identity

    video = torch.randn(2, 4, 3, 32, 32)
    model.encode_video(video).pow(2).sum().backward()
    for layer in model.temporal.temporal_layers:
        assert layer.attn.out_proj.weight.grad.abs().sum() > 0
    # Q/K/V get gradient only once the output projection is non-zero; one optimiser step makes it so
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    model.zero_grad()
    model.encode_video(video).pow(2).sum().backward()
    assert first.attn.in_proj_weight.grad.abs().sum() > 0


def test_hta_adds_28_4m_parameters_at_b32():
    def count(model):
        return sum(p.numel() for p in model.parameters())

    extra = count(vidla.create_model("vidla-b32", temporal="hta")) - count(vidla.create_model("vidla-b32"))
    assert abs(extra - 28.4e6) <= 0.5e6


def test_frame_order_matters_to_hta_not_meanpool():
    torch.manual_seed(0)
    video = torch.randn(2, 8, 3, 32, 32)
    shuffled = video[:, torch.randperm(8)]
    with torch.no_grad():
        meanpool = vidla.create_model("vidla-tiny", num_frames=8).eval()
        assert torch.allclose(meanpool.encode_video(video), meanpool.encode_video(shuffled), atol=1e-5)
        hta = vidla.create_model("vidla-tiny", temporal="hta", num_frames=8).eval()
        assert (hta.encode_video(video) - hta.encode_video(shuffled)).abs().max() > 1e-3


def test_built_for_12_frames_runs_on_32(tmp_path):
    model = vidla.create_model("vidla-tiny", temporal="hta", num_frames=12).eval()
    _perturb_new_weights(model)
    with torch.no_grad():
        assert model.encode_video(torch.randn(1, 32, 3, 32, 32)).shape == (1, 64)
    table = model.temporal.positions.table
    resampled = model.temporal.positions(32)
    assert torch.allclose(resampled[0], table[0]) and torch.allclose(resampled[-1], table[-1])
    # a checkpoint saved at 12 frames loads into a 32-frame model with the table resampled
    path = vidla.save_model(model, tmp_path / "hta12.safetensors")
    again = vidla.load_model(path, num_frames=32)
    assert again.temporal.positions.table.shape[0] == 32
    assert torch.allclose(again.temporal.positions.table, resampled.detach())


@pytest.mark.parametrize("design", DESIGNS)
def test_every_design_checkpointing_and_bf16(design):
    torch.manual_seed(0)
    model = vidla.create_model("vidla-tiny", temporal=design, num_frames=4)
    _perturb_new_weights(model)
    video = torch.randn(2, 4, 3, 32, 32)
    model.encode_video(video).sum().backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model.encode_video(video).sum().backward()
    for name, grad in plain.items():
        assert torch.allclose(model.get_parameter(name).grad, grad, atol=1e-5), name
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = model.encode_video(video)
    reference = model.encode_video(video).detach()
    assert torch.isfinite(low).all()
    assert torch.nn.functional.cosine_similarity(low.float(), reference).min() > 0.98


def test_divided_and_windows_start_as_meanpool(clip_folder):
    video = torch.randn(2, 8, 3, 32, 32)
    with torch.no_grad():
        reference = vidla.load_model(clip_folder, num_frames=8).eval().encode_video(video)
        for design in ("divided", "htwa"):
            model = vidla.load_model(clip_folder, temporal=design, num_frames=8).eval()
            assert torch.allclose(model.encode_video(video), reference, atol=1e-5), design


def test_ablations_and_bad_options():
    video = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        for options in ({"mst_levels": 0}, {"mst_hierarchy": False}, {"temporal_attention": False}):
            model = vidla.create_model("vidla-tiny", temporal="hta", num_frames=4, **options).eval()
            assert model.encode_video(video).shape == (1, 64)
    assert vidla.create_model("vidla-tiny", temporal="hta", mst_levels=0).temporal.mst_tokens.numel() == 0
    assert vidla.create_model("vidla-tiny", temporal="hta", temporal_attention=False).temporal.temporal_layers is None
    with pytest.raises(ValueError, match="unknown temporal design"):
        vidla.create_model("vidla-tiny", temporal="lstm")
    with pytest.raises(ValueError, match="hta.*unexpected keyword"):
        vidla.create_model("vidla-tiny", temporal="hta", mst_levles=2)
    with pytest.raises(ValueError, match="one temporal window per layer"):
        vidla.create_model("vidla-tiny", temporal="divided", windows=[2])


# LF-VILA's hierarchical temporal windows (SPEC 5.1) ------------------------------------------------------------------

@pytest.mark.parametrize("layers,frames,expected", [
    # ViT-B (12 layers): LF-VILA's six stages two layers each; at 32 frames exactly its 2, 4, 8, 16, 16, 32
    (12, 32, [2, 2, 4, 4, 8, 8, 16, 16, 16, 16, 0, 0]),
    (12, 8, [2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 0, 0]),     # shares 1/2 and 1 frame -> 2 (a window sees 2 or more)
    (12, 12, [2, 2, 2, 2, 3, 3, 6, 6, 6, 6, 0, 0]),    # 12/4 = 3 and 12/2 = 6 frames: windows tile 12 exactly
    # the demo's 4 layers: stages 0, 2, 3 and 5 (the first and the last kept)
    (4, 8, [2, 2, 4, 0]), (4, 12, [2, 3, 6, 0]), (4, 32, [2, 8, 16, 0]),
])
def test_htwa_window_schedule(layers, frames, expected):
    from vidla.models.temporal.spacetime import lf_vila_windows

    assert lf_vila_windows(layers, frames) == expected


def test_htwa_windows_follow_the_frame_count_and_explicit_windows_stay():
    model = vidla.create_model("vidla-demo", temporal="htwa", num_frames=12)
    assert model.temporal.windows_for(12) == [2, 3, 6, 0] and model.temporal.windows_for(32) == [2, 8, 16, 0]
    fixed = vidla.create_model("vidla-demo", temporal="htwa", num_frames=12, windows=[4, 4, 0, 0])
    assert fixed.temporal.windows_for(32) == [4, 4, 0, 0]


@pytest.mark.parametrize("frames", [8, 12])
def test_htwa_information_flows_through_the_windows_to_every_frame(frames):
    """Which input frames reach frame s's state after each block: exactly those the windows chain together
    (fixed blocks from frame 0: no shift), and after the last block every frame reaches every frame."""
    torch.manual_seed(0)
    model = vidla.create_model("vidla-demo", temporal="htwa", num_frames=frames)
    _perturb_new_weights(model)
    model.eval()
    windows = model.temporal.windows_for(frames)
    video = torch.randn(1, frames, 3, 32, 32)
    moved = video.repeat(frames + 1, 1, 1, 1, 1)  # row 0 as is, row 1 + t with frame t changed
    moved[torch.arange(1, frames + 1), torch.arange(frames)] += 1.0
    outputs = []  # every block's output, from one forward pass
    hooks = [block.register_forward_hook(lambda m, i, out: outputs.append(out))
             for block in model.visual.transformer.resblocks]
    with torch.no_grad():
        model.encode_video(moved)
    for hook in hooks:
        hook.remove()
    reach = torch.eye(frames, dtype=torch.bool)  # reach[s, t]: frame t's input can reach frame s
    for layer, window in enumerate(windows):
        size = window or frames
        same_block = torch.tensor([[s // size == t // size for t in range(frames)] for s in range(frames)])
        reach = (same_block.float() @ reach.float()) > 0
        states = model.temporal.frame_states(model.visual, outputs[layer], frames + 1, frames)  # [1 + T, T, W]
        seen = ((states[1:] - states[:1]).abs().amax(-1) > 1e-6).T  # seen[s, t]
        assert torch.equal(seen, reach), (layer, window)
    assert reach.all()
    # and so the video feature depends on frame order
    with torch.no_grad():
        swapped = video[:, [1, 0, *range(2, frames)]]
        assert (model.encode_video(video) - model.encode_video(swapped)).abs().max() > 1e-4

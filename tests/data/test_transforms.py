import numpy as np
import pytest
import torch

from vidla.data.transforms import (
    CLIP_MEAN,
    CLIP_STD,
    VideoTransform,
    center_crop,
    image_size_of,
    normalize,
    preprocess_video,
    random_scale_crop,
    resize_shorter_side,
    three_crop,
    to_channels_first,
)


def _frames(t=3, h=60, w=80, seed=0):
    return torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_layouts():
    frames = _frames()
    assert to_channels_first(frames).shape == (3, 3, 60, 80)
    assert torch.equal(to_channels_first(to_channels_first(frames)), to_channels_first(frames))
    assert torch.equal(preprocess_video(frames, 32), preprocess_video(frames.permute(0, 3, 1, 2), 32))
    with pytest.raises(ValueError):
        to_channels_first(torch.zeros(2, 4, 5, 6))


def test_eval_output_shape_dtype_and_normalisation():
    out = preprocess_video(_frames(), 32)
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.float32
    grey = torch.full((1, 40, 40, 3), 128, dtype=torch.uint8)
    value = preprocess_video(grey, 40)[0, :, 0, 0]
    expected = (128 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(value, expected, atol=1e-6)


def test_image_size_from_a_model():
    class Model:
        image_size = 24

    assert image_size_of(Model()) == 24 and image_size_of((24, 24)) == 24
    assert preprocess_video(_frames(), Model()).shape[-1] == 24
    with pytest.raises(ValueError):
        image_size_of((24, 32))


def test_shorter_side_resize_and_centre_crop_follow_torchvision_rules():
    frames = to_channels_first(_frames(h=60, w=81))
    resized = resize_shorter_side(frames, 30)
    assert resized.shape[-2:] == (30, 40)  # int(30 * 81 / 60) = 40
    assert center_crop(resized, 30).shape[-2:] == (30, 30)
    tall = resize_shorter_side(to_channels_first(_frames(h=81, w=60)), 30)
    assert tall.shape[-2:] == (40, 30)
    assert torch.equal(resized, resized.round()) and resized.min() >= 0 and resized.max() <= 255  # 8-bit like PIL


def test_matches_clip_pil_preprocessing():
    """CLIP's own pipeline: PIL bicubic resize of the shorter side, centre crop, ToTensor, Normalize."""
    image_module = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    coarse = (rng.random((12, 16, 3)) * 255).astype(np.uint8)  # smooth content, like a photo
    image = np.asarray(image_module.fromarray(coarse).resize((320, 240), image_module.BICUBIC))
    size = 224
    pil = image_module.fromarray(image).resize((int(size * 320 / 240), size), image_module.BICUBIC)
    left = int(round((pil.width - size) / 2.0))
    pil = np.asarray(pil.crop((left, 0, left + size, size)), dtype=np.float32) / 255
    expected = torch.from_numpy((pil - np.array(CLIP_MEAN)) / np.array(CLIP_STD)).permute(2, 0, 1).float()
    ours = preprocess_video(torch.from_numpy(image.copy())[None], size)[0]
    assert (ours - expected).abs().max() <= 1.01 / 255 / min(CLIP_STD)  # within one grey level


def test_train_crop_is_one_crop_for_the_whole_clip():
    frame = _frames(t=1, h=50, w=70)
    clip = frame.repeat(6, 1, 1, 1)
    generator = torch.Generator().manual_seed(3)
    for _ in range(10):
        out = preprocess_video(clip, 20, train=True, generator=generator)
        assert out.shape == (6, 3, 20, 20)
        assert all(torch.equal(out[0], out[i]) for i in range(6))


def test_multi_scale_crop_sides_and_flip(monkeypatch):
    import vidla.data.transforms as transforms

    sides = set()
    original = transforms.resize
    monkeypatch.setattr(transforms, "resize", lambda x, h, w: (sides.add(tuple(x.shape[-2:])), original(x, h, w))[1])
    for seed in range(40):
        random_scale_crop(to_channels_first(_frames(h=50, w=70)), 16, generator=torch.Generator().manual_seed(seed))
    assert sides == {(50, 50), (40, 40)}  # scales 1.0 and 0.8 of the shorter side, square: aspect kept
    monkeypatch.undo()
    flipped = []
    for seed in range(20):
        def run(flip_prob):
            return preprocess_video(_frames(t=1), 16, train=True, scales=(1.0,), flip_prob=flip_prob,
                                    generator=torch.Generator().manual_seed(seed))
        same, mirrored = run(0.0), run(0.5)
        assert torch.equal(mirrored, same) or torch.equal(mirrored, same.flip(-1))
        flipped.append(not torch.equal(mirrored, same))
    assert 3 < sum(flipped) < 17


def test_views_and_three_crop():
    views = torch.stack([_frames(seed=s) for s in range(2)])  # [V, T, H, W, 3]
    assert preprocess_video(views, 16).shape == (2, 3, 3, 16, 16)
    crops = three_crop(_frames(h=40, w=80), 40)
    assert crops.shape == (3, 3, 3, 40, 40)
    full = resize_shorter_side(to_channels_first(_frames(h=40, w=80)), 40)
    assert torch.equal(crops[0], full[..., :40]) and torch.equal(crops[2], full[..., 40:])
    assert normalize(crops).shape == crops.shape


def test_video_transform_is_picklable_and_equivalent():
    import pickle

    transform = pickle.loads(pickle.dumps(VideoTransform(16)))
    assert torch.equal(transform(_frames()), preprocess_video(_frames(), 16))
    assert "train=False" in repr(transform)


@pytest.mark.parametrize("train", [False, True])
def test_uint8_output_normalised_later_equals_the_float_output(train):
    """data.uint8_frames: the loader hands uint8 frames and the device normalises them; the model must see the
    same tensor as from the float path (the same crop and flip, drawn from the same generator state)."""
    frames = torch.stack([_frames(t=4, h=72, w=128, seed=s) for s in range(2)])  # two views, [2, 4, 72, 128, 3]
    for seed in range(4):
        floats = VideoTransform(32, train=train)(frames, torch.Generator().manual_seed(seed))
        small = VideoTransform(32, train=train, normalized=False)(frames, torch.Generator().manual_seed(seed))
        assert small.dtype == torch.uint8 and small.shape == floats.shape == (2, 4, 3, 32, 32)
        # an independent reference for the normalisation: CLIP's (x / 255 - mean) / std written out
        mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
        torch.testing.assert_close(normalize(small), floats, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close((small.float() / 255 - mean) / std, floats, rtol=1e-5, atol=1e-5)
    # no resize (frames already S x S): the uint8 path passes the pixels through untouched
    square = _frames(t=2, h=32, w=32)
    assert torch.equal(preprocess_video(square, 32, normalized=False), square.permute(0, 3, 1, 2))

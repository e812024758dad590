"""`vidla eval` decodes at the size training's loader decodes to: its preprocessed clips equal the training dataset's
(VideoTextDataset + VideoTransform, computed independently) on a video larger than the model needs; decode_size=None
gives the old full-size pixels; the cache tells the two apart; a bad decode size is a clear error."""

import pytest
import torch

import vidla
from vidla.data.datasets import VideoTextDataset
from vidla.data.manifest import ClipRecord
from vidla.data.synthetic import write_video
from vidla.data.transforms import CLIP_STD, VideoTransform
from vidla.evaluate import ClipSampling, EmbeddingCache, Embedder
from vidla.evaluate.embed import ClipDataset
from vidla.evaluate.run import EvalOptions, describe_protocol, resolve_sampling

SIZE = 32  # decode_size(32) = 64 < the video's 360


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> ClipRecord:
    path = write_video(tmp_path_factory.mktemp("v") / "wide.mp4", num_frames=20, fps=10.0, width=640, height=360,
                       textured=True)
    return ClipRecord(video=str(path), start=0.3, end=1.8)


def test_eval_clips_equal_the_training_loaders_and_full_size_stays_an_option(clip):
    sampling = ClipSampling(num_frames=4)
    evaluated = ClipDataset([clip], sampling, SIZE)[0]["video"][0]  # the one view
    trained = VideoTextDataset([clip], num_frames=4, transform=VideoTransform(SIZE))[0]["video"]
    assert evaluated.shape == (4, 3, SIZE, SIZE) and torch.equal(evaluated, trained)
    full = ClipDataset([clip], ClipSampling(num_frames=4, decode_size=None), SIZE)[0]["video"][0]
    reference = vidla.preprocess_video(vidla.load_video(clip.video, 4, start=clip.start, end=clip.end), SIZE)
    assert torch.equal(full, reference)  # the pixels before decode-time scaling
    levels = ((full - evaluated) * torch.tensor(CLIP_STD).view(3, 1, 1) * 255).abs()
    assert 0 < levels.mean() < 2.0, levels.mean()  # other pixels, close


def test_the_cache_tells_decode_sizes_apart(clip, tmp_path):
    torch.manual_seed(0)
    model = vidla.create_model("vidla-tiny", temporal="meanpool", num_frames=4)
    embedder = Embedder(model, device="cpu", cache=EmbeddingCache(tmp_path), num_workers=0, progress=False)
    scaled = embedder.videos([clip], ClipSampling(num_frames=4)).features
    full = embedder.videos([clip], ClipSampling(num_frames=4, decode_size="full")).features
    same = embedder.videos([clip], ClipSampling(num_frames=4, decode_size=64)).features  # = auto, spelled out
    assert [entry["cache"] for entry in embedder.log] == ["miss", "miss", "hit"]
    assert not torch.equal(scaled, full) and torch.equal(scaled, same)


def test_eval_options_choose_the_decode_size():
    from vidla.evaluate.protocols import get_protocol

    protocol = get_protocol("msrvtt")
    assert resolve_sampling(protocol, EvalOptions()).decode_size == "auto"
    assert resolve_sampling(protocol, EvalOptions(decode_size="full")).decode_size == "full"
    with pytest.raises(ValueError, match="decode size must be 'auto', 'full'"):
        resolve_sampling(protocol, EvalOptions(decode_size="big"))
    split = type("Split", (), {"task": "retrieval", "split": "test", "videos": [], "texts": [], "class_names": []})
    described = describe_protocol(protocol, split, ClipSampling(num_frames=4), EvalOptions(), 224, 0)
    assert described["decoding"].startswith("shorter side scaled to 448 px")


def test_the_cli_flag(msrvtt_root, tiny_checkpoint, tmp_path, capsys):
    import json

    from _eval_helpers import run_cli

    argv = ["eval", "--benchmark", "msrvtt", "--data-root", str(msrvtt_root), "--checkpoint", str(tiny_checkpoint),
            "--frames", "4", "--output", str(tmp_path / "run"), "--no-cache", "--workers", "0", "--no-progress"]
    assert run_cli([*argv, "--decode-size", "full"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["protocol"]["decoding"] == "frames at the source's size"
    assert results["options"]["decode_size"] == "full"
    assert run_cli([*argv, "--decode-size", "tiny"]) == 2
    assert "decode size must be 'auto', 'full'" in capsys.readouterr().err

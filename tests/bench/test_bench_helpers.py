"""The benchmark scripts' helpers: the largest-batch search and the device peak table."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from common import largest_fitting, mean_ci, peak_tflops  # noqa: E402


@pytest.mark.parametrize("true_max", [1, 7, 8, 9, 100, 1000, 1023, 4097])
def test_largest_fitting_finds_the_limit_within_its_resolution(true_max):
    tried = []

    def fits(batch):
        tried.append(batch)
        return batch <= true_max

    found, capped = largest_fitting(fits, 1, 1 << 20)
    assert not capped and found <= true_max and true_max - found <= max(1, found // 8)
    assert all(fits(b) for b in [found]) and len(tried) <= 2 * (true_max.bit_length() + 4)


def test_largest_fitting_edges():
    assert largest_fitting(lambda b: b <= 50, 8, 32) == (32, True)  # the limit fit: the maximum may be higher
    assert largest_fitting(lambda b: b <= 50, 8, 40) == (40, True)
    assert largest_fitting(lambda b: False, 8, 64) == (0, False)
    found, capped = largest_fitting(lambda b: b <= 50, 8, 64)  # 8, 16, 32 fit; 64 fails; bisect to 48 or more
    assert not capped and 44 <= found <= 50


def test_peak_table_and_interval():
    assert peak_tflops("NVIDIA H200") == 989 and peak_tflops("NVIDIA H100 80GB HBM3") == 989
    assert peak_tflops("NVIDIA H100 PCIe") == 756 and peak_tflops("NVIDIA A100-SXM4-80GB") == 312
    assert peak_tflops("NVIDIA L40S") == 362 and peak_tflops("NVIDIA L4") == 121
    assert peak_tflops("NVIDIA A10G") is None and peak_tflops("NVIDIA A10G", 70.0) == 70.0
    assert peak_tflops("Some Future GPU") is None
    mean, half = mean_ci([1.0, 2.0, 3.0])  # t(0.975, 2) = 4.303; sd 1: 4.303 / sqrt(3) = 2.484
    assert mean == 2.0 and half == pytest.approx(2.4843, abs=1e-3)


def test_selection_frame_shares_split_mentioned_and_distractor_frames():
    import torch

    from selection import FRAMES_PER_EVENT, frame_shares
    from vidla.data.manifest import ClipRecord

    assert FRAMES_PER_EVENT == 4
    record = ClipRecord(video="v.mp4", id="a", start=None, end=None, texts={"caption": "c"},
                        extra={"event_starts": [3, 40], "distractor_starts": [20, 60]})
    # frames 3 (mentioned, first frame), 6 (mentioned, last frame), 7 (background), 23 (distractor, last frame)
    shares = frame_shares([record], torch.tensor([[3, 6, 7, 23]]))
    assert shares == {"event_frames": 75.0, "mentioned_frames": 50.0, "distractor_frames": 25.0}
    plain = ClipRecord(video="v.mp4", id="b", start=None, end=None, texts={"caption": "c"},
                       extra={"event_starts": [3, 40]})
    assert frame_shares([plain], torch.tensor([[3, 7, 41, 44]])) == {"event_frames": 50.0}

"""Every bad input gives a clear error naming the file (and, inside a dataset, a skipped and counted sample)."""

import numpy as np
import pytest
import torch
from _video_cases import pyav_frames, truncate, write_audio_only

from vidla.data.decode import VideoDecodeError, VideoNotFoundError, open_video
from vidla.data.synthetic import read_frame_index, write_video
from vidla.data.video import load_video, read_clip


def _fails(path, match, **options):
    with pytest.raises(VideoDecodeError, match=match) as caught:
        load_video(path, 8, **options)
    assert str(path) in str(caught.value)  # the message names the file
    return caught.value


def test_missing_file(tmp_path):
    error = _fails(tmp_path / "absent.mp4", "no such file")
    assert isinstance(error, VideoNotFoundError) and isinstance(error, FileNotFoundError)


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    _fails(tmp_path / "empty.mp4", "empty")


def test_non_video_file(tmp_path):
    (tmp_path / "notes.mp4").write_text("these are not the frames you are looking for\n" * 50)
    _fails(tmp_path / "notes.mp4", "cannot open")
    (tmp_path / "noise.mkv").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    _fails(tmp_path / "noise.mkv", "cannot open")


def test_audio_only_file(tmp_path):
    _fails(write_audio_only(tmp_path / "audio.mp4", with_empty_video_stream=False), "no video stream")


def test_zero_length_video_stream(tmp_path):
    """A video stream that never got a frame, beside an audio track that did."""
    _fails(write_audio_only(tmp_path / "silent_film.mkv", with_empty_video_stream=True), "no frame|zero length")


def test_truncated_mp4_without_its_index(videos, tmp_path):
    """mp4 writes its index (moov) at the end by default: cut, the file cannot be opened."""
    _fails(truncate(videos["h264.mp4"], tmp_path / "cut.mp4"), "cannot open")


def test_truncated_mp4_with_its_index_first(videos, tmp_path):
    """faststart puts the index first: the frames near the end are referenced but gone."""
    path = truncate(videos["h264_faststart.mp4"], tmp_path / "cut_faststart.mp4")
    _fails(path, "truncated|corrupt")
    early = load_video(path, 2, end=1.0)  # what is still there can be read
    assert [read_frame_index(f) for f in early] == [6, 18]


def test_truncated_matroska(videos, tmp_path):
    """Matroska streams: the cut file opens and decodes, then ends long before its header's duration."""
    _fails(truncate(videos["h264.mkv"], tmp_path / "cut.mkv"), "truncated")


def test_corrupt_bytes_inside_the_stream(videos, tmp_path):
    data = bytearray(videos["h264_faststart.mp4"].read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = bytes(4000)  # a hole of zeros in the coded frames
    path = tmp_path / "holed.mp4"
    path.write_bytes(bytes(data))
    try:
        frames = load_video(path, 8)
    except VideoDecodeError as e:  # either a clean error naming the file ...
        assert str(path) in str(e)
    else:  # ... or FFmpeg conceals the damage; never a crash or NaN
        assert frames.shape == (8, 48, 64, 3)


def test_video_shorter_than_asked(videos, tmp_path):
    short = write_video(tmp_path / "three_frames.mp4", num_frames=3)
    frames = load_video(short, 8)  # more frames than the video has: frames repeat
    assert [read_frame_index(f) for f in frames] == [0, 0, 0, 1, 1, 2, 2, 2]
    error = _fails(short, "window starts at 5.00 s", start=5.0)  # a window after the end: an error
    assert "0.12 s long" in str(error)
    assert load_video(short, 2, "fps", fps=50).shape[0] == 2  # fps sampling pads a short window
    assert load_video(short, 4, "dense", stride=4).shape[0] == 4


def test_variable_frame_rate_is_read_by_time(videos):
    times, _ = pyav_frames(videos["vfr.mkv"])
    frames = load_video(videos["vfr.mkv"], 10)
    duration = open_video(videos["vfr.mkv"]).info.duration
    centres = (np.arange(10) + 0.5) * duration / 10
    expected = [int(np.searchsorted(times, t, side="right")) - 1 for t in centres]
    assert [read_frame_index(f) for f in frames] == expected
    assert expected != [round(c * 25) for c in centres]  # a constant-rate assumption would be wrong here


@pytest.mark.parametrize("name,shape", [("rotate90.mp4", (64, 48)), ("rotate180.mp4", (48, 64)),
                                        ("rotate270.mp4", (64, 48))])
def test_rotation_metadata_gives_upright_frames(videos, name, shape):
    clip = read_clip(videos[name], 2)
    assert tuple(clip.frames.shape[1:3]) == shape
    rotation = clip.info.rotation
    upright = np.rot90(clip.frames[0].numpy(), k=-round(rotation / 90))  # undo: the index cells are readable again
    assert read_frame_index(upright) == 5
    raw = read_clip(videos[name], 2, autorotate=False).frames
    assert tuple(raw.shape[1:3]) == (48, 64)


def test_missing_frame_folder_and_empty_folder(tmp_path):
    _fails(tmp_path / "no_frames_here", "no such file")
    (tmp_path / "empty_folder").mkdir()
    _fails(tmp_path / "empty_folder", "no image files")


def test_unreadable_image_in_a_frame_folder(frame_folder, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for path in sorted(frame_folder.iterdir())[:4]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "frame_2.png").write_bytes(b"not a png")
    with pytest.raises(VideoDecodeError, match="frame_2.png"):
        load_video(folder, 4)


def test_errors_are_not_nan(videos):
    frames = load_video(videos["h264.mp4"], 4)
    assert frames.dtype == torch.uint8  # integers: a decoded batch can never hold NaN

import csv
import json
from pathlib import Path

import pytest

import vidla
from _eval_helpers import MSRVTT_CAPTIONS_PER_VIDEO, MSRVTT_FRAMES

from vidla.data.synthetic import write_video


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised vidla-tiny saved as a vidla checkpoint (32 px input, 64-d embeddings)."""
    path = tmp_path_factory.mktemp("checkpoint") / "tiny.safetensors"
    return vidla.save_model(vidla.create_model("vidla-tiny", temporal="meanpool", num_frames=4), path)


def msrvtt_caption(video: int, caption: int) -> str:
    return f"clip number {video} shows scene {caption}"


@pytest.fixture(scope="session")
def msrvtt_root(tmp_path_factory) -> Path:
    """A small benchmark in MSR-VTT's real layout: MSRVTT_JSFUSION_test.csv (key,vid_key,video_id,sentence),
    MSRVTT_data.json ({"videos": [...], "sentences": [...]}), videos/all/videoNNNN.mp4."""
    root = tmp_path_factory.mktemp("msrvtt")
    (root / "videos" / "all").mkdir(parents=True)
    ids = [7000 + i for i in range(len(MSRVTT_FRAMES))]
    for video_id, frames in zip(ids, MSRVTT_FRAMES):
        write_video(root / "videos" / "all" / f"video{video_id}.mp4", num_frames=frames, fps=10.0,
                    width=64, height=48)
    with (root / "MSRVTT_JSFUSION_test.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "vid_key", "video_id", "sentence"])
        for i, video_id in enumerate(ids):
            writer.writerow([f"ret{i}", f"msr{video_id}", f"video{video_id}", msrvtt_caption(i, 0)])
    videos = [{"category": i % 20, "url": f"https://www.youtube.com/watch?v=synthetic{i}", "video_id": f"video{v}",
               "start time": 0.0, "end time": frames / 10, "split": "test", "id": v}
              for i, (v, frames) in enumerate(zip(ids, MSRVTT_FRAMES))]
    sentences = [{"caption": msrvtt_caption(i, c), "video_id": f"video{v}",
                  "sen_id": i * MSRVTT_CAPTIONS_PER_VIDEO + c}
                 for i, v in enumerate(ids) for c in range(MSRVTT_CAPTIONS_PER_VIDEO)]
    (root / "MSRVTT_data.json").write_text(json.dumps({"info": {"year": 2016}, "videos": videos,
                                                       "sentences": sentences}))
    return root

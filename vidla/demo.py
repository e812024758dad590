"""The built-in end-to-end example: synthetic videos and captions, a model, text-to-video retrieval.

Without a checkpoint the model is a randomly initialised `vidla-tiny`, so the rankings are arbitrary: the run
shows the whole path (tokenizing, frame normalisation, both towers, similarity, ranking) working offline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import vidla
from vidla.models import CLIP_MEAN, CLIP_STD

COLOURS = {"red": (1.0, 0.1, 0.1), "green": (0.1, 0.8, 0.1), "blue": (0.1, 0.2, 1.0), "yellow": (1.0, 0.9, 0.1)}
MOTIONS = {"left to right": (1, 0), "right to left": (-1, 0), "top to bottom": (0, 1), "bottom to top": (0, -1)}


def synthetic_video(colour: tuple[float, float, float], motion: tuple[int, int], frames: int, size: int) -> torch.Tensor:
    """A square of one colour moving across a grey background: uint8-range floats [T, 3, size, size] in 0..1."""
    video = torch.full((frames, 3, size, size), 0.5)
    side = size // 4
    for t in range(frames):
        progress = t / max(1, frames - 1)
        x = int((progress if motion[0] >= 0 else 1 - progress) * (size - side)) if motion[0] else (size - side) // 2
        y = int((progress if motion[1] >= 0 else 1 - progress) * (size - side)) if motion[1] else (size - side) // 2
        video[t, :, y:y + side, x:x + side] = torch.tensor(colour)[:, None, None]
    return video


def normalise(video: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(CLIP_MEAN)[:, None, None], torch.tensor(CLIP_STD)[:, None, None]
    return (video - mean) / std


def run(checkpoint: str | None = None, quick: bool = False) -> dict[str, float]:
    model = vidla.load_model(checkpoint) if checkpoint else vidla.create_model("vidla-tiny", num_frames=8)
    model.eval()
    size, frames = model.image_size, 4 if quick else 8
    captions, videos = [], []
    for colour_name, colour in COLOURS.items():
        for motion_name, motion in MOTIONS.items():
            captions.append(f"a {colour_name} square moves from {motion_name}")
            videos.append(normalise(synthetic_video(colour, motion, frames, size)))
    print(f"model: {'random vidla-tiny' if checkpoint is None else checkpoint} "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, image {size}px, {frames} frames)")
    with torch.no_grad():
        text = F.normalize(model.encode_text(captions), dim=-1)
        video = F.normalize(model.encode_video(torch.stack(videos)), dim=-1)
    similarity = text @ video.T
    ranks = (similarity > similarity.diag()[:, None]).sum(1) + 1
    metrics = {f"t2v_r{k}": 100.0 * (ranks <= k).float().mean().item() for k in (1, 5, 10)}
    print(f"{len(captions)} synthetic clips, text-to-video retrieval:")
    print("| " + " | ".join(metrics) + " |\n|" + "---|" * len(metrics))
    print("| " + " | ".join(f"{v:.1f}" for v in metrics.values()) + " |")
    query = captions[0]
    best = similarity[0].topk(3).indices.tolist()
    print(f"query {query!r}: top clips " + ", ".join(f"#{i} ({captions[i]})" for i in best))
    if checkpoint is None:
        print("(random weights: rankings are arbitrary; pass --checkpoint with CLIP weights for real ones)")
    return metrics

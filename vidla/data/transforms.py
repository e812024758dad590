"""Frame transforms in torch, on whole clips: one crop and one flip for all frames of a clip.

Input: uint8 frames [T, H, W, 3] (as `load_video` returns them) or [T, 3, H, W]. Output of `preprocess_video`:
float32 [T, 3, S, S], normalised with CLIP's mean and std, for a model whose input size is S; or, with
`normalized=False`, the same frames as uint8 (4x fewer bytes between loader workers and to the GPU), which
`normalize` turns into exactly the float output on whatever device they land on.

Evaluation follows CLIP's own preprocessing: resize the shorter side to S with antialiased bicubic interpolation,
rounded back to 8-bit values as PIL does, then a centre crop. Training (the paper's recipe) takes a random square
crop whose side is 1.0 or 0.8 of the shorter side (aspect kept, no stretching), resizes it to S, and flips half the
clips horizontally.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def image_size_of(size_or_model: int | Any) -> int:
    """An int, or a model exposing `image_size` (its input resolution)."""
    size = getattr(size_or_model, "image_size", size_or_model)
    if isinstance(size, (tuple, list)):
        if len(size) != 2 or size[0] != size[1]:
            raise ValueError(f"only square inputs are supported, got image_size={size}")
        size = size[0]
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"image_size must be a positive int, got {size!r}")
    return size


def to_channels_first(frames: torch.Tensor) -> torch.Tensor:
    """[T, H, W, 3] -> [T, 3, H, W]; [T, 3, H, W] passes. A [T, 3, W', 3] tensor is taken as channels-last."""
    if frames.dim() != 4:
        raise ValueError(f"expected frames [T, H, W, 3] or [T, 3, H, W], got shape {tuple(frames.shape)}")
    if frames.shape[-1] == 3:
        return frames.permute(0, 3, 1, 2)
    if frames.shape[1] == 3:
        return frames
    raise ValueError(f"expected 3 colour channels first or last, got shape {tuple(frames.shape)}")


def resize(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Antialiased bicubic resize of [T, 3, H, W] to float [T, 3, height, width], rounded to 0..255 like PIL."""
    if frames.shape[-2:] == (height, width):
        return frames.float()
    # Bicubic with antialias follows PIL's kernel (a = -0.5), the one CLIP was trained with.
    out = F.interpolate(frames.float(), size=(height, width), mode="bicubic", antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255)


def resize_shorter_side(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Shorter side to `size`, aspect kept (the longer side truncated as torchvision's Resize(int) does)."""
    height, width = frames.shape[-2:]
    if height <= width:
        return resize(frames, size, int(size * width / height))
    return resize(frames, int(size * height / width), size)


def center_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size region (offsets rounded as torchvision's CenterCrop)."""
    height, width = frames.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"cannot centre-crop {size}x{size} from {width}x{height}; resize first")
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return frames[..., top:top + size, left:left + size]


def random_scale_crop(frames: torch.Tensor, size: int, scales: Sequence[float] = (1.0, 0.8),
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """A square crop of side scale * shorter side (scale drawn from `scales`) at a random place, resized to size."""
    height, width = frames.shape[-2:]
    scale = scales[int(torch.randint(len(scales), (1,), generator=generator))]
    side = max(1, int(round(scale * min(height, width))))
    top = int(torch.randint(height - side + 1, (1,), generator=generator))
    left = int(torch.randint(width - side + 1, (1,), generator=generator))
    return resize(frames[..., top:top + side, left:left + side], size, size)


def three_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Three size x size crops along the longer side (start, centre, end) after the shorter-side resize.

    Returns [3, T, 3, size, size]: the spatial views of multi-view testing (Kinetics 5x3, SSv2 2x3).
    """
    frames = resize_shorter_side(to_channels_first(frames), size)
    height, width = frames.shape[-2:]
    along_width = width >= height
    longer = width if along_width else height
    crops = []
    for offset in (0, (longer - size) // 2, longer - size):
        crops.append(frames[..., :, offset:offset + size] if along_width else frames[..., offset:offset + size, :])
    return torch.stack(crops)


def normalize(frames: torch.Tensor, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> torch.Tensor:
    """0..255 values [..., 3, H, W] -> (x / 255 - mean) / std, float32, on the frames' device."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=frames.device).view(3, 1, 1) * 255
    std_t = torch.tensor(std, dtype=torch.float32, device=frames.device).view(3, 1, 1) * 255
    return (frames.float() - mean_t) / std_t


def preprocess_video(
    frames: torch.Tensor,
    image_size: int | Any,
    train: bool = False,
    *,
    scales: Sequence[float] = (1.0, 0.8),
    flip_prob: float = 0.5,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    generator: torch.Generator | None = None,
    normalized: bool = True,
) -> torch.Tensor:
    """uint8 frames [T, H, W, 3] or [T, 3, H, W] -> normalised float32 [T, 3, S, S] for a model of input size S.
    normalized=False: uint8 [T, 3, S, S] instead (the resize already rounds to 0..255), to be `normalize`d later.

    Views [V, T, ...] (from `load_video(..., num_clips=V)`) give [V, T, 3, S, S].

    `image_size` is an int or a model with `image_size`. Evaluation: shorter-side resize + centre crop (CLIP's
    preprocessing). Training: multi-scale random square crop + horizontal flip, drawn once for the whole clip.
    """
    size = image_size_of(image_size)
    if frames.dim() == 5:  # [views, T, ...]: each view gets its own crop
        return torch.stack([preprocess_video(view, size, train, scales=scales, flip_prob=flip_prob, mean=mean,
                                             std=std, generator=generator, normalized=normalized)
                            for view in frames])
    frames = to_channels_first(frames)
    if train:
        frames = random_scale_crop(frames, size, scales, generator)
        if flip_prob > 0 and float(torch.rand(1, generator=generator)) < flip_prob:
            frames = frames.flip(-1)
    else:
        frames = center_crop(resize_shorter_side(frames, size), size)
    if not normalized:
        return frames.to(torch.uint8).contiguous()
    return normalize(frames, mean, std).contiguous()


def decode_size(image_size: int | Any, train: bool = False, scales: Sequence[float] = (1.0, 0.8)) -> int:
    """The shorter side to decode frames to (`resize_to`) for a model of input size S: twice what the transform
    needs, i.e. 2 S for evaluation and 2 ceil(S / smallest crop scale) for training.

    The one rule every reader that feeds a model uses (training's loader, the search indexer, search by example,
    `vidla eval`), so they all see the same pixels; thumbnails use it with their own size. Why twice: the decoder's
    bicubic scaling is not antialiased as the transform's resize is, so the last 2x step is left to the transform,
    whose output then stays within about a grey level of the full-size path's; and for evaluation 2 S is a multiple of
    S, which keeps the transform's resize and crop geometry exactly that of full-size frames (see
    `vidla.data.decode.output_size`). Memory is then bounded by the output, not the source (a 4K frame is 25 MB as
    RGB, one at 2 x 224 = 448 px is 1 MB).
    """
    return 2 * _needed_short_side(image_size_of(image_size), train, scales)


def resolve_decode_size(option: int | str | None, image_size: int | Any) -> int | None:
    """A decode-size option as readers take it (`resize_to`): "auto" -> `decode_size(image_size)`; None or "full" ->
    None (frames at the source's size, as before decode-time scaling); a positive int (or its digits) -> itself."""
    if option == "auto":
        return decode_size(image_size)
    if option is None or option == "full":
        return None
    try:
        value = int(option)
    except (TypeError, ValueError):
        value = 0
    if value < 1 or isinstance(option, (bool, float)):
        raise ValueError(f"decode size must be 'auto', 'full' (None) or a positive number of pixels, got {option!r}")
    return value


def _needed_short_side(size: int, train: bool, scales: Sequence[float]) -> int:
    return size if not train else math.ceil(size / min(scales))  # a 0.8 crop is resized up to S


class VideoTransform:
    """`preprocess_video` as a picklable callable for datasets: VideoTransform(model.image_size, train=True)."""

    def __init__(self, image_size: int | Any, train: bool = False, *, scales: Sequence[float] = (1.0, 0.8),
                 flip_prob: float = 0.5, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD,
                 normalized: bool = True):
        self.image_size, self.train, self.normalized = image_size_of(image_size), train, normalized
        self.scales, self.flip_prob, self.mean, self.std = tuple(scales), flip_prob, tuple(mean), tuple(std)

    @property
    def decode_short_side(self) -> int:
        """The shorter side this transform needs from the decoder: S for evaluation, S / the smallest crop scale for
        training (the crop is then resized up to S)."""
        return _needed_short_side(self.image_size, self.train, self.scales)

    @property
    def decode_size(self) -> int:
        """What to decode to for this transform (`resize_to`): see `decode_size`."""
        return decode_size(self.image_size, self.train, self.scales)

    def __call__(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return preprocess_video(frames, self.image_size, self.train, scales=self.scales, flip_prob=self.flip_prob,
                                mean=self.mean, std=self.std, generator=generator, normalized=self.normalized)

    def __repr__(self) -> str:
        return f"VideoTransform(image_size={self.image_size}, train={self.train}, normalized={self.normalized})"


__all__ = ["CLIP_MEAN", "CLIP_STD", "VideoTransform", "center_crop", "decode_size", "image_size_of", "normalize",
           "preprocess_video", "random_scale_crop", "resize", "resize_shorter_side", "resolve_decode_size",
           "three_crop", "to_channels_first"]

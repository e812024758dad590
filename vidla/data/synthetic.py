"""Synthetic videos whose frames carry their own index, for tests and benchmarks.

Each frame shows a grid of black/white cells in its top third that spells the frame index in binary (coarse enough
to survive lossy coding and chroma subsampling), over a moving colour pattern that gives the encoder real work.
`read_frame_index` recovers the index from a decoded RGB frame, so a test can check exactly which frame a sampler
or a seek returned.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

INDEX_BITS = 12  # up to 4095 frames: enough for 60 s at 60 fps
_GRID_ROWS, _GRID_COLS = 2, 6


def _cell_slices(height: int, width: int, bit: int) -> tuple[slice, slice]:
    row, col = divmod(bit, _GRID_COLS)
    cell_h, cell_w = height // 3 // _GRID_ROWS, width // _GRID_COLS
    return slice(row * cell_h, (row + 1) * cell_h), slice(col * cell_w, (col + 1) * cell_w)


def frame_with_index(index: int, width: int = 64, height: int = 48, texture: np.ndarray | None = None) -> np.ndarray:
    """An RGB uint8 frame [height, width, 3] whose top third encodes `index`; the rest moves with `index`."""
    if not 0 <= index < 2**INDEX_BITS:
        raise ValueError(f"frame index {index} does not fit in {INDEX_BITS} bits")
    if texture is not None:  # a large still texture panned by one pixel per frame: natural-ish motion
        x0 = index % max(1, texture.shape[1] - width)
        image = texture[:height, x0:x0 + width].copy()
    else:
        y, x = np.mgrid[0:height, 0:width]
        image = np.stack([(x * 4 + index * 3) % 256, (y * 5 + index * 7) % 256, ((x + y) * 2 + index * 11) % 256],
                         axis=-1).astype(np.uint8)
    for bit in range(INDEX_BITS):
        rows, cols = _cell_slices(height, width, bit)
        image[rows, cols] = 255 if (index >> bit) & 1 else 0
    return image


def read_frame_index(frame: np.ndarray) -> int:
    """The index spelled by a frame made by `frame_with_index` (any [H, W, 3] RGB array or tensor)."""
    frame = np.asarray(frame)
    height, width = frame.shape[:2]
    index = 0
    for bit in range(INDEX_BITS):
        rows, cols = _cell_slices(height, width, bit)
        # The inner half of a cell only: its borders blur into the neighbours after coding.
        r0, r1 = rows.start + (rows.stop - rows.start) // 4, rows.stop - (rows.stop - rows.start) // 4
        c0, c1 = cols.start + (cols.stop - cols.start) // 4, cols.stop - (cols.stop - cols.start) // 4
        if frame[r0:r1, c0:c1].mean() > 127:
            index |= 1 << bit
    return index


def noise_texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth colour noise (bilinearly upsampled from a coarse grid) with grain: compresses like camera footage."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    ys, xs = np.linspace(0, coarse.shape[0] - 1.001, height), np.linspace(0, coarse.shape[1] - 1.001, width)
    y0, x0 = ys.astype(int), xs.astype(int)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = coarse[y0][:, x0] * (1 - wx) + coarse[y0][:, x0 + 1] * wx
    bottom = coarse[y0 + 1][:, x0] * (1 - wx) + coarse[y0 + 1][:, x0 + 1] * wx
    fine = rng.normal(0, 6, size=(height, width, 3))
    return np.clip(top * (1 - wy) + bottom * wy + fine, 0, 255).astype(np.uint8)


def write_video(
    path: str | Path,
    num_frames: int = 50,
    fps: float = 25.0,
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    keyframe_interval: int | None = None,
    timestamps: Sequence[float] | None = None,
    rotation: int | None = None,
    codec_options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    textured: bool = False,
) -> Path:
    """Encodes frames `frame_with_index(0..num_frames-1)` with PyAV; returns `path`.

    `timestamps` (seconds, increasing) makes a variable-frame-rate video; `rotation` stores a display matrix
    (degrees counterclockwise) as phone cameras do.
    """
    import av

    path = Path(path)
    texture = noise_texture(width + num_frames + 1, height) if textured else None
    time_base = Fraction(1, 1000) if timestamps is not None else Fraction(1, round(fps)) if float(fps).is_integer() \
        else Fraction(fps).limit_denominator(1001) ** -1
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.time_base = time_base
        if keyframe_interval:
            stream.codec_context.gop_size = keyframe_interval
        if codec_options:
            stream.codec_context.options = dict(codec_options)
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_with_index(index, width, height, texture), format="rgb24")
            frame.time_base = time_base
            frame.pts = round(timestamps[index] / time_base) if timestamps is not None else index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path

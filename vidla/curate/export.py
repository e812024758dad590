"""Optional export of a curated manifest as WebDataset shards: tar files holding, per clip, `KEY.mp4` (the
clip cut out of its source video and re-encoded, video only) and `KEY.json` (its record and provenance).

The manifest alone is enough for `vidla train`; export when training reads from object storage, where
random access into long source videos is slow. The tar format and writer are vidla.data's (vidla.data.shards);
each shard is written atomically.
"""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path

from vidla.curate.frames import VideoDecodeError
from vidla.data.manifest import ClipRecord, iter_manifest
from vidla.data.shards import ShardWriter, shard_key


def encoder_name() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def cut_clip(path: str | Path, start: float, end: float, max_side: int | None = None) -> bytes:
    """The frames shown in [start, end) of a video, re-encoded into an in-memory MP4 (timestamps from 0)."""
    import av

    try:
        container = av.open(str(path))
    except Exception as e:  # av raises many types; name the file whatever went wrong
        raise VideoDecodeError(path, f"cannot open: {e}") from e
    buffer = io.BytesIO()
    with container:
        source = container.streams.video[0]
        source.thread_type = "SLICE"
        rate = source.average_rate or Fraction(25)
        container.seek(int(max(0.0, start) / source.time_base), stream=source, backward=True, any_frame=False)
        with av.open(buffer, "w", format="mp4") as out:
            stream = None
            for frame in container.decode(source):
                if frame.time is None or frame.time < start - 1e-6:
                    continue
                if frame.time >= end - 1e-6:
                    break
                if stream is None:
                    stream = _add_stream(out, frame, rate, max_side)
                picture = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
                picture.pts, picture.time_base = round((frame.time - start) * rate), 1 / rate
                for packet in stream.encode(picture):
                    out.mux(packet)
            if stream is None:
                raise VideoDecodeError(path, f"no frame in [{start:.3f}, {end:.3f})")
            for packet in stream.encode():
                out.mux(packet)
    return buffer.getvalue()


def _add_stream(out, frame, rate: Fraction, max_side: int | None):
    width, height = frame.width, frame.height
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = round(width * scale), round(height * scale)
    stream = out.add_stream(encoder_name(), rate=rate)
    stream.width, stream.height = width - width % 2, height - height % 2  # 4:2:0 needs even sizes
    stream.pix_fmt = "yuv420p"
    return stream


def export_webdataset(manifest: str | Path, output: str | Path, clips_per_shard: int = 1000,
                      max_side: int | None = None, progress: bool = True) -> list[Path]:
    """Writes `output/shard-000000.tar`, ... in vidla.data's shard format (read by `ShardDataset` and
    `vidla train`); returns their paths. Each record names its member video and spans all of it; where it was
    cut from is kept as `source_video`, `source_start`, `source_end`."""
    from tqdm import tqdm

    manifest = Path(manifest)
    with ShardWriter(Path(output) / "shard-%06d.tar", max_count=clips_per_shard) as writer:
        for position, record in enumerate(tqdm(iter_manifest(manifest), desc="export", unit="clip",
                                               disable=not progress)):
            key = writer.unique_key(shard_key(record, position), position)
            clip = cut_clip(record.resolve(manifest.parent), record.start or 0.0, record.end or float("inf"),
                            max_side)
            meta = ClipRecord(video=f"{key}.mp4", id=record.id, texts=record.texts, label=record.label,
                              extra={**record.extra, "source_video": record.video, "source_start": record.start,
                                     "source_end": record.end})
            writer.write(key, {"mp4": clip, "json": json.dumps(meta.to_json(), ensure_ascii=False).encode()})
    return [path for path, _ in writer.shards]

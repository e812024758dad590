"""Decoding speed: uniform 12-frame sampling of a 60 s 720p H.264 video, against decoding every frame with ffmpeg.

    python bench/decode.py                      # footage is generated once into a cache folder (about a minute)
    python bench/decode.py --json results.json  # also save the figures

The footage (panned smooth noise with per-frame grain, about 1-2.5 Mbit/s like web video at 720p) is encoded twice
with x264 (preset veryfast, CRF 20, B-frames): a keyframe every 2 s (50 frames), and x264's default of every 250
frames (10 s at 25 fps). A "clip" is one call of `vidla.load_video(path, 12)`: open the file, seek, decode, convert
the 12 frames to RGB. The baselines run the ffmpeg command line over every frame: to rgb24 (what a loader that
decodes everything and keeps RGB frames pays) and to nothing (`-f null`: decoding alone, the strictest bound).
Everything runs on one thread, as in a DataLoader worker; the multi-threaded ffmpeg figure is printed for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidla.data.decode import VideoReader  # noqa: E402
from vidla.data.synthetic import noise_texture  # noqa: E402
from vidla.data.video import load_video  # noqa: E402

ENCODINGS = {"keyframe every 2 s": 50, "keyframe every 250 frames (x264 default)": None}
X264_OPTIONS = {"preset": "veryfast", "crf": "20"}


def make_footage(folder: Path, seconds: int, width: int, height: int, fps: int) -> dict[str, Path]:
    """Both encodings of the same footage, generated in one pass (each frame synthesised once); cached."""
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"{seconds}s_{width}x{height}_{fps}fps"
    paths = {label: folder / f"footage_{tag}_gop{gop or 'default'}.mp4" for label, gop in ENCODINGS.items()}
    if all(p.is_file() for p in paths.values()):
        return paths
    count = seconds * fps
    texture = noise_texture(width + 4 * count + 1, height + 64, seed=0)
    grain = [np.random.default_rng(i).integers(-6, 7, (height, width, 3), dtype=np.int16) for i in range(7)]
    outputs = []
    for (label, gop), path in zip(ENCODINGS.items(), paths.values()):
        container = av.open(str(path.with_suffix(".tmp.mp4")), "w")
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        stream.codec_context.options = dict(X264_OPTIONS)
        outputs.append((container, stream))
    started = time.perf_counter()
    for index in range(count):
        top = int(32 + 32 * np.sin(index / 20))  # pan sideways, sway up and down: motion in both directions
        window = texture[top:top + height, 4 * index:4 * index + width].astype(np.int16)
        rgb = np.clip(window + grain[index % 7], 0, 255)
        frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24").reformat(format="yuv420p")
        for container, stream in outputs:
            frame.pts = index
            container.mux(stream.encode(frame))
    for (container, stream), path in zip(outputs, paths.values()):
        container.mux(stream.encode())
        container.close()
        path.with_suffix(".tmp.mp4").replace(path)
    print(f"generated {len(paths)} x {count} frames in {time.perf_counter() - started:.0f} s into {folder}")
    return paths


def describe(path: Path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keyframes = [e.timestamp for e in stream.index_entries if e.is_keyframe]
        seconds = float(stream.duration * stream.time_base)
        return {"file": path.name, "frames": stream.frames, "seconds": seconds, "keyframes": len(keyframes),
                "bitrate_mbps": path.stat().st_size * 8 / seconds / 1e6}


def best_time(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def ffmpeg_seconds(path: Path, output: str, threads: int | None, repeats: int) -> float:
    command = ["ffmpeg", "-v", "error", "-nostdin", *(["-threads", str(threads)] if threads else []), "-i", str(path)]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-y", os.devnull] if output == "rgb24" else ["-f", "null", "-"]
    return best_time(lambda: subprocess.run(command, check=True), repeats)


def vidla_seconds(path: Path, num_frames: int, clips: int, repeats: int, skip_nonref: bool = True) -> float:
    def run():
        for _ in range(clips):
            if skip_nonref:
                load_video(path, num_frames, threads=1)
            else:
                with VideoReader(path, threads=1, skip_nonref=False) as reader:
                    duration = reader.info.duration
                    reader.frames_at([(i + 0.5) * duration / num_frames for i in range(num_frames)])
    return best_time(run, repeats) / clips


def decoder_work(path: Path, num_frames: int) -> tuple[int, int]:
    """(packets fed to the decoder, frames it reconstructed) for one clip; skipped non-reference frames are fed
    but not reconstructed."""
    packets = frames = 0
    original = VideoReader._decode_packet

    def counting(self, packet):
        nonlocal packets, frames
        decoded = original(self, packet)
        packets += packet is not None
        frames += len(decoded)
        return decoded

    VideoReader._decode_packet = counting
    try:
        load_video(path, num_frames, threads=1)
    finally:
        VideoReader._decode_packet = original
    return packets, frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--footage", type=Path, default=Path(tempfile.gettempdir()) / "vidla-bench-decode",
                        help="where the generated videos are cached")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--num-frames", type=int, default=12)
    parser.add_argument("--clips", type=int, default=5, help="clips per timing")
    parser.add_argument("--repeats", type=int, default=3, help="timings; the best is kept")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        print("the ffmpeg command line is needed for the baseline (apt-get install ffmpeg)", file=sys.stderr)
        return 2
    width, height = (int(v) for v in args.size.split("x"))
    paths = make_footage(args.footage, args.seconds, width, height, args.fps)
    ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {ffmpeg_version}; "
          f"PyAV {av.__version__} (FFmpeg {av.library_versions['libavcodec']})")
    results = []
    for label, path in paths.items():
        packets, frames = decoder_work(path, args.num_frames)
        row = {"encoding": label, **describe(path), "packets_per_clip": packets, "frames_per_clip": frames}
        row["ffmpeg_rgb24_s"] = ffmpeg_seconds(path, "rgb24", 1, args.repeats)
        row["ffmpeg_decode_only_s"] = ffmpeg_seconds(path, "null", 1, args.repeats)
        row["ffmpeg_rgb24_all_threads_s"] = ffmpeg_seconds(path, "rgb24", None, args.repeats)
        row["vidla_s"] = vidla_seconds(path, args.num_frames, args.clips, args.repeats)
        row["vidla_no_skip_s"] = vidla_seconds(path, args.num_frames, args.clips, args.repeats, skip_nonref=False)
        results.append(row)
    _print_table(results, args.num_frames)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def _print_table(results: list[dict], num_frames: int) -> None:
    print(f"\nclips/s, one thread (one clip = {num_frames} uniformly sampled frames as RGB; ffmpeg: every frame)")
    header = ("encoding", "bitrate", "packets / frames decoded", "ffmpeg rgb24", "ffmpeg decode", "vidla",
              "vidla no skip", "x vs rgb24", "x vs decode")
    print(" | ".join(header))
    for r in results:
        cells = (r["encoding"], f"{r['bitrate_mbps']:.1f} Mbit/s",
                 f"{r['packets_per_clip']} / {r['frames_per_clip']} of {r['frames']}", f"{1 / r['ffmpeg_rgb24_s']:.3f}",
                 f"{1 / r['ffmpeg_decode_only_s']:.3f}", f"{1 / r['vidla_s']:.3f}", f"{1 / r['vidla_no_skip_s']:.3f}",
                 f"{r['ffmpeg_rgb24_s'] / r['vidla_s']:.1f}x", f"{r['ffmpeg_decode_only_s'] / r['vidla_s']:.1f}x")
        print(" | ".join(cells))
    for r in results:
        print(f"{r['encoding']}: ffmpeg rgb24 with all threads {1 / r['ffmpeg_rgb24_all_threads_s']:.3f} clips/s "
              f"({r['keyframes']} keyframes)")


if __name__ == "__main__":
    sys.exit(main())

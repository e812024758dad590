"""Video input: decoding, sampling, transforms, datasets, shards, loaders and benchmark readers (docs/data.md)."""

from vidla.data.benchmarks import BenchmarkSplit, list_benchmarks, load_benchmark
from vidla.data.datasets import ClipLoader, FailedSample, VideoTextDataset
from vidla.data.decode import VideoDecodeError, VideoInfo, VideoNotFoundError, open_video, probe_video
from vidla.data.index import ClipIndex, build_clip_index
from vidla.data.loader import VideoDataLoader, collate_clips, make_dataloader
from vidla.data.manifest import ClipRecord, iter_manifest, read_manifest, write_manifest
from vidla.data.sampling import SAMPLING_METHODS, sample_timestamps
from vidla.data.shards import ShardDataset, ShardWriter, write_shards
from vidla.data.transforms import CLIP_MEAN, CLIP_STD, VideoTransform, decode_size, preprocess_video
from vidla.data.video import VideoClip, load_video, read_clip

__all__ = [
    "BenchmarkSplit", "CLIP_MEAN", "CLIP_STD", "ClipIndex", "ClipLoader", "ClipRecord", "FailedSample",
    "SAMPLING_METHODS", "ShardDataset", "ShardWriter", "VideoClip", "VideoDataLoader", "VideoDecodeError",
    "VideoInfo", "VideoNotFoundError", "VideoTextDataset", "VideoTransform", "build_clip_index", "collate_clips",
    "decode_size", "iter_manifest", "list_benchmarks", "load_benchmark", "load_video", "make_dataloader",
    "open_video", "preprocess_video", "probe_video", "read_clip", "read_manifest", "sample_timestamps", "write_manifest",
    "write_shards",
]

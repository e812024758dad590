"""WebDataset-format shards: plain tar files, written and streamed with the standard library.

A corpus that does not fit on local disk lives as shards on object storage or a web server and is read
sequentially, shard by shard, without random access. Each clip is two consecutive tar members sharing a key
(the WebDataset convention: key = member name up to the first dot):

    000000042.mp4    the video file's bytes, as stored on disk (its own extension)
    000000042.json   the clip record (docs/manifest.md), "video" naming the member above

    write_shards("clips.jsonl", "shards/", max_count=1000)             # shards/shard-000000.tar, ... + shards.json
    dataset = ShardDataset("shards/shard-{000000..000099}.tar", num_frames=12, shuffle=True)
    dataset = ShardDataset("pipe:aws s3 cp s3://bucket/shard-{000000..000099}.tar -")  # any command's stdout
    dataset = ShardDataset("https://host/shards/shard-{000000..000099}.tar")

Shards are split across distributed ranks and DataLoader workers; with `shuffle`, the shard order changes every
epoch (`set_epoch`) and samples pass through a shuffle buffer. Members are grouped into samples by the `webdataset`
library's own code, and samples written by other tools (video2dataset: a video, a `.txt` caption, a `.json`
record) are read too (`sample_record`). Keys are one-to-one with clip ids (`shard_key`) and unique within a shard
(`ShardWriter.unique_key`), so every clip written is a clip read back.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import re
import subprocess
import tarfile
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Sequence

import torch
from torch.utils.data import IterableDataset, get_worker_info

from vidla.data.datasets import ClipLoader, FailedSample, open_clips
from vidla.data.manifest import ClipRecord
from vidla.io import atomic_write

logger = logging.getLogger(__name__)

SHARD_LIST = "shards.json"


_KEY_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def shard_key(record: ClipRecord, position: int) -> str:
    """A tar-safe key: the clip id percent-encoded (every character but ASCII letters, digits, '_' and '-', so
    '.' and '/', which would split the key, and '%' itself), else the position.

    The encoding is one-to-one: distinct ids (`x/1`, `x_1`, `x.1`) get distinct keys.
    """
    if record.id is not None and str(record.id):
        return "".join(c if c in _KEY_SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
                       for c in str(record.id))
    return f"{position:09d}"


class ShardWriter:
    """Writes samples into numbered tar shards, starting a new one after `max_count` samples or `max_size` bytes."""

    def __init__(self, pattern: str | os.PathLike, max_count: int = 1000, max_size: int = 1 << 30):
        self.pattern, self.max_count, self.max_size = str(pattern), max_count, max_size
        if "%" not in self.pattern:
            raise ValueError(f"the shard pattern needs a number placeholder such as %06d, got {self.pattern!r}")
        self.shards: list[tuple[Path, int]] = []  # (path, number of samples)
        self._file_context = self._tar = None
        self._count = self._size = 0
        self._keys: set[str] = set()  # the keys in the current shard: a repeat would merge two samples
        self.repeated = 0  # keys made unique by `unique_key`

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, *rest: object) -> None:
        self._finish(discard=exc_type is not None)

    def write(self, key: str, members: dict[str, bytes]) -> None:
        """One sample: {extension: bytes}, written as `key.extension` members."""
        if not key or "." in key or "/" in key:
            raise ValueError(f"a shard key must be non-empty, without '.' or '/': {key!r}")
        size = sum(len(data) for data in members.values())
        if self._tar is None or self._count >= self.max_count or (self._count and self._size + size > self.max_size):
            self._next_shard()
        if key in self._keys:  # readers group members by key: the two samples would come back as one
            raise ValueError(f"shard key {key!r} is already in {self.shards[-1][0]}; use unique_key()")
        self._keys.add(key)
        for extension, data in members.items():
            info = tarfile.TarInfo(f"{key}.{extension}")
            info.size, info.mode, info.mtime = len(data), 0o444, 0  # fixed metadata: identical input, identical shard
            self._tar.addfile(info, io.BytesIO(data))
        self._count += 1
        self._size += size

    def unique_key(self, key: str, position: int) -> str:
        """`key`, or `key~POSITION` when the current shard already holds it (a repeated clip id): '~' never occurs
        in `shard_key`'s output and positions are unique, so the result is unique."""
        if key not in self._keys:
            return key
        self.repeated += 1
        return f"{key}~{position}"

    def write_clip(self, record: ClipRecord, video: Path, position: int) -> None:
        """A clip record and its video file's bytes."""
        if video.is_dir():
            raise ValueError(f"{video}: frame folders cannot go into shards; encode them as a video first")
        key = self.unique_key(shard_key(record, position), position)
        extension = video.suffix.lstrip(".").lower() or "mp4"
        meta = record.to_json() | {"video": f"{key}.{extension}"}
        self.write(key, {extension: video.read_bytes(), "json": json.dumps(meta, ensure_ascii=False).encode()})

    def _next_shard(self) -> None:
        self._finish(discard=False)
        path = Path(self.pattern % len(self.shards))
        self._file_context = atomic_write(path, "wb")  # a crash never leaves a half-written shard in place
        self._tar = tarfile.open(fileobj=self._file_context.__enter__(), mode="w|")
        self.shards.append((path, 0))
        self._count = self._size = 0
        self._keys = set()

    def _finish(self, discard: bool) -> None:
        if self._tar is None:
            return
        self._tar.close()
        error = RuntimeError("shard writing aborted") if discard else None
        self._file_context.__exit__(type(error) if error else None, error, None)
        path, _ = self.shards[-1]
        if discard:
            self.shards.pop()
        else:
            self.shards[-1] = (path, self._count)
        self._tar = self._file_context = None


def write_shards(clips: Sequence[ClipRecord] | str | os.PathLike, out_dir: str | os.PathLike,
                 root: str | os.PathLike | None = None, *, max_count: int = 1000, max_size: int = 1 << 30,
                 prefix: str = "shard") -> list[Path]:
    """Packs clips (a manifest path or records) into `out_dir/prefix-NNNNNN.tar` + a `shards.json` listing them.

    Missing videos are logged and left out. Returns the shard paths.
    """
    if isinstance(clips, (str, os.PathLike)):
        manifest = Path(clips)
        clips = open_clips(manifest)
        root = getattr(clips, "root", manifest.parent) if root is None else root  # an index knows its root
    root = Path(root) if root is not None else Path(".")
    out_dir = Path(out_dir)
    missing = 0
    with ShardWriter(out_dir / f"{prefix}-%06d.tar", max_count, max_size) as writer:
        for position, record in enumerate(clips):
            video = record.resolve(root)
            if not video.exists():
                logger.warning("leaving out clip %s: %s not found", record.id or position, video)
                missing += 1
                continue
            writer.write_clip(record, video, position)
    if writer.repeated:
        logger.warning("%d clips repeat an id already in their shard: their keys carry '~POSITION'", writer.repeated)
    listing = {"shards": [{"url": path.name, "count": count} for path, count in writer.shards],
               "total": sum(count for _, count in writer.shards), "missing": missing, "repeated_ids": writer.repeated}
    with atomic_write(out_dir / SHARD_LIST) as f:
        json.dump(listing, f, indent=1)
    return [path for path, _ in writer.shards]


# ---------------------------------------------------------------------------------------------------------------------
# Reading


def expand_urls(urls: str | os.PathLike | Sequence[str]) -> list[str]:
    """A list, a brace range ("shard-{000..099}.tar"), a folder (its *.tar), or a shards.json listing."""
    if not isinstance(urls, (str, os.PathLike)):
        return [u for url in urls for u in expand_urls(url)]
    url = str(urls)
    match = re.search(r"\{(\d+)\.\.(\d+)\}", url)
    if match:
        first, last = match.groups()
        width = len(first)
        return [u for n in range(int(first), int(last) + 1)
                for u in expand_urls(url[:match.start()] + str(n).zfill(width) + url[match.end():])]
    if "://" not in url and not url.startswith("pipe:"):
        path = Path(url)
        if path.is_dir():
            return sorted(str(p) for p in path.glob("*.tar"))
        if path.suffix == ".json":
            listing = json.loads(path.read_text(encoding="utf-8"))
            return [str(path.parent / entry["url"]) for entry in listing["shards"]]
    return [url]


class _Stream:
    """A readable byte stream for a shard URL: a local path, `pipe:COMMAND` (its stdout), or http(s)."""

    def __init__(self, url: str):
        self.url, self._process = url, None
        if url.startswith("pipe:"):
            self._process = subprocess.Popen(url[5:], shell=True, stdout=subprocess.PIPE)
            self.file: BinaryIO = self._process.stdout
        elif re.match(r"https?://", url):
            self.file = urllib.request.urlopen(url, timeout=60)
        else:
            self.file = open(url.removeprefix("file:"), "rb")

    def close(self) -> None:
        self.file.close()
        if self._process is not None and self._process.wait() != 0:
            raise OSError(f"{self.url}: the command exited with status {self._process.returncode}")


def iter_tar_samples(url: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) for consecutive tar members sharing a key, read sequentially.

    The grouping is the `webdataset` library's own (key = member path up to the first dot of its file name,
    extensions lower-cased, `__meta__` members skipped), so vidla reads a shard exactly as WebDataset does. A member
    that repeats an extension within its sample (a foreign shard with adjacent repeated keys), which the library
    refuses, is dropped with a warning naming the shard, and reading goes on.
    """
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    def duplicate(error: Exception) -> bool:  # a member repeating its sample's extension: dropped, named, go on
        if not isinstance(error, ValueError):
            return False
        logger.warning("%s: dropping a member: %s", url, error.args[0] if error.args else error)
        return True

    stream = _Stream(url)
    try:
        members = (dict(member, __url__=url) for member in tar_file_iterator(stream.file))
        for sample in group_by_keys(members, handler=duplicate):
            key = sample.pop("__key__")
            yield key, {k: v for k, v in sample.items() if not k.startswith("__")}
    finally:
        stream.close()


class ShardDataset(IterableDataset):
    """Streams clips from WebDataset shards; yields the samples of `VideoTextDataset` (or `FailedSample`s).

    urls: see `expand_urls`. shuffle: shard order per epoch + a `shuffle_buffer` of samples. The other keyword
    arguments configure a `ClipLoader`.
    """

    def __init__(self, urls: str | os.PathLike | Sequence[str], *, shuffle: bool = False, shuffle_buffer: int = 1000,
                 seed: int = 0, **loader_options: Any):
        self.urls = expand_urls(urls)
        if not self.urls:
            raise ValueError(f"no shards found for {urls!r}")
        self.shuffle, self.shuffle_buffer, self.seed, self.epoch = shuffle, shuffle_buffer, seed, 0
        self.loader = ClipLoader(**loader_options)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _my_shards(self) -> tuple[list[str], int]:
        """This process's share of the shards (by rank, then by DataLoader worker) and a seed for its buffer."""
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        urls = list(self.urls)
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(urls)  # the same order on every rank and worker
        consumer, consumers = rank * num_workers + worker_id, world * num_workers
        if len(urls) < consumers:
            logger.warning("%d shards for %d readers (ranks x workers): some readers get none", len(urls), consumers)
        return urls[consumer::consumers], (self.seed + self.epoch) * 100_003 + consumer

    def __iter__(self) -> Iterator[dict[str, Any] | FailedSample]:
        urls, seed = self._my_shards()
        samples = self._samples(urls)
        if self.shuffle and self.shuffle_buffer > 1:
            samples = _shuffled(samples, self.shuffle_buffer, random.Random(seed))
        yield from samples

    def _samples(self, urls: Iterable[str]) -> Iterator[dict[str, Any] | FailedSample]:
        for url in urls:
            try:
                for position, (key, members) in enumerate(iter_tar_samples(url)):
                    yield self._load(url, position, key, members)
            except (OSError, tarfile.TarError, ValueError) as e:  # unreachable, damaged, a duplicated member
                logger.warning("skipping the rest of shard %s: %s", url, e)
                yield FailedSample(-1, None, url, f"shard unreadable: {e}")

    def _load(self, url: str, position: int, key: str, members: dict[str, bytes]) -> dict[str, Any] | FailedSample:
        name = f"{url}:{key}"
        try:
            record, extension = sample_record(key, members)
        except (KeyError, ValueError, UnicodeDecodeError) as e:
            return FailedSample(position, key, name, f"malformed sample: {type(e).__name__}: {e}")
        return self.loader.load(record, members[extension], position, name=f"{url}:{record.video}")


VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "avi", "mov", "m4v", "mpg", "mpeg", "ts", "flv", "ogv", "gif")


def sample_record(key: str, members: dict[str, bytes]) -> tuple[ClipRecord, str]:
    """The clip record of a shard sample and the extension of its video member.

    vidla's shards hold a clip record whose "video" names the member. Shards written by other tools
    (video2dataset, `webdataset.TarWriter`) hold a video member (mp4, webm, ...), an optional `.txt` caption and an
    optional `.json` record of their own: the caption becomes the "caption" text, the json's fields are kept as
    `extra`, and the id is the json's "key" (video2dataset) or the sample key.
    """
    meta = json.loads(members["json"]) if "json" in members else {}
    if isinstance(meta, dict) and "video" in meta:
        record = ClipRecord.from_json(meta)
        extension = record.video.partition(".")[2]
        if extension not in members:
            raise KeyError(f"the record names {record.video!r} but the sample has no .{extension} member")
        return record, extension
    extension = next((e for e in VIDEO_EXTENSIONS if e in members), None)
    if extension is None:
        raise KeyError(f"no video member (one of .{', .'.join(VIDEO_EXTENSIONS)}) among {sorted(members)}")
    extra = meta if isinstance(meta, dict) else {"json": meta}
    texts = {}
    caption = members["txt"].decode("utf-8") if "txt" in members else extra.get("caption")
    if isinstance(caption, str):
        texts["caption"] = caption
    clip_id = extra.get("key", key.rsplit("/", 1)[-1])
    record = ClipRecord.from_json({**{k: v for k, v in extra.items() if k not in ("id", "texts", "start", "end",
                                                                                "label", "video")},
                                   "id": str(clip_id), "video": f"{key.rsplit('/', 1)[-1]}.{extension}",
                                   "texts": texts})
    return record, extension


def _shuffled(samples: Iterator, size: int, rng: random.Random) -> Iterator:
    """A shuffle buffer: holds `size` samples, emits a random one for each new one."""
    buffer: list = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        index = rng.randrange(size)
        buffer[index], sample = sample, buffer[index]
        yield sample
    rng.shuffle(buffer)
    yield from buffer

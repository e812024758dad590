"""The curation recipe as typed dataclasses, loadable from YAML (configs/curate/*.yaml) with overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidla.config import apply_overrides, from_dict, load_yaml
from vidla.curate.backends import BackendConfig
from vidla.curate.clipping import DEFAULT_SCALES, Scale

STAGES = ("subtitles", "sentences", "clips", "captions", "texts")


@dataclass
class SubtitleConfig:
    source: str = "auto"  # auto: a file beside the video if any, else a stream in it; or "sidecar", "embedded"
    languages: list[str] = field(default_factory=lambda: ["en"])  # preference order (file tags, stream tags)

    def __post_init__(self) -> None:
        if self.source not in ("auto", "sidecar", "embedded"):
            raise ValueError(f"subtitles.source must be auto, sidecar or embedded, got {self.source!r}")


@dataclass
class SentenceConfig:
    punctuator: str = "auto"  # auto | pauses | hf:<token-classification model>
    pause_seconds: float = 0.6  # the pause rule: a silence this long ends a sentence
    max_words: int = 40  # longer sentences are split at their longest pauses
    device: str = "cpu"  # hf punctuator only
    label_map: dict[str, str] = field(default_factory=dict)  # hf: model label -> mark, where guessing fails


@dataclass
class ClipConfig:
    scales: list[Scale] = field(default_factory=lambda: list(DEFAULT_SCALES))
    max_gap: float = 10.0  # a clip never spans a silence longer than this (seconds)

    def __post_init__(self) -> None:
        self.scales = [Scale(**s) if isinstance(s, dict) else s for s in self.scales]
        names = [s.name for s in self.scales]
        if len(set(names)) != len(names):
            raise ValueError(f"clips.scales: duplicate scale names {names}")


@dataclass
class CaptionConfig:
    backend: BackendConfig = field(default_factory=BackendConfig)
    fps: float = 0.1  # the paper's rate
    max_frames: int | None = None  # per video; longer videos get this many frames spread evenly
    max_side: int = 512  # frames are scaled down to this longer side before captioning


@dataclass
class SummaryConfig:
    backend: BackendConfig = field(default_factory=BackendConfig)
    scales: list[str] = field(default_factory=lambda: ["medium", "long"])  # the paper: short is not summarised
    max_tokens: int = 75  # the text tower's context (77 CLIP tokens) minus start and end tokens
    summarize_overlong: bool = True  # summarise other scales' texts that exceed max_tokens
    max_input_words: int = 1500  # longer LLM inputs are summarised in parts first


@dataclass
class RunConfig:
    workers: int = 1  # videos in flight; raise it (4-16) with HTTP backends
    retry_failed: bool = True  # rerun units whose last attempt failed
    memo_chunk: int = 32  # model calls committed to the store together
    progress: bool = True


@dataclass
class CurateConfig:
    input: str = ""  # a JSONL manifest of source videos, or a folder searched for videos
    output: str = ""  # the output folder (manifest.jsonl, failures.jsonl, stats.json, state.sqlite)
    state: str | None = None  # the SQLite state store; default OUTPUT/state.sqlite (state-I-of-N per shard)
    subtitles: SubtitleConfig = field(default_factory=SubtitleConfig)
    sentences: SentenceConfig = field(default_factory=SentenceConfig)
    clips: ClipConfig = field(default_factory=ClipConfig)
    captions: CaptionConfig = field(default_factory=CaptionConfig)
    summaries: SummaryConfig = field(default_factory=SummaryConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict[str, Any] | None = None) -> CurateConfig:
    """YAML file (optional) <- `base` dict <- `key=value` overrides, into a CurateConfig."""
    data = load_yaml(path) if path else {}
    _merge(data, base or {})
    apply_overrides(data, overrides or [])
    return from_dict(CurateConfig, data)


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value

"""Data curation (SPEC section 3): videos with subtitles -> multi-scale clips with a caption and a subtitle each.

The stages, usable one by one from Python or chained by `run_curation` / `vidla curate run`:
subtitles (vidla.curate.subtitles) -> sentences (.sentences) -> clips (.clipping) -> frame captions (.frames,
.backends) -> summaries (.summarize) -> manifest and statistics (.pipeline, .stats). docs/curation.md tells
the whole story: the state store, the fault model, the prompt and the backends.
"""

from vidla.curate.clipping import DEFAULT_SCALES, Clip, Scale, cut_clips
from vidla.curate.config import CurateConfig, load_config
from vidla.curate.pipeline import merge_shards, read_sources, run_curation
from vidla.curate.sentences import Sentence, build_punctuator, sentences_from_segments
from vidla.curate.subtitles import (Segment, Subtitles, parse_subtitles, read_embedded, read_json3, read_srt,
                                    read_subtitle_file, read_subtitles, read_vtt)
from vidla.curate.summarize import SUMMARY_PROMPT, summary_prompt

__all__ = ["DEFAULT_SCALES", "Clip", "Scale", "cut_clips", "CurateConfig", "load_config", "merge_shards",
           "read_sources", "run_curation", "Sentence", "build_punctuator", "sentences_from_segments", "Segment",
           "read_embedded", "read_json3", "read_srt", "read_subtitle_file", "read_vtt", "SUMMARY_PROMPT",
           "summary_prompt", "Subtitles", "parse_subtitles", "read_subtitles"]

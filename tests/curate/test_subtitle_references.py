"""vidla's subtitle reader against independent truth: webvtt-py's and pysubs2's cue lists on real subtitle files
from those packages' own source distributions (tests/curate/data/subtitles/README.md), plus property-based fuzzing.
"""

import html
from pathlib import Path

import pysubs2
import pytest
import webvtt
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vidla.curate.subtitles import SubtitleError, parse_subtitles, read_subtitles

DATA = Path(__file__).parent / "data" / "subtitles"
VTT_FILES = sorted(p.name for p in DATA.glob("*.vtt"))
SRT_FILES = sorted(p.name for p in DATA.glob("*.srt"))
SKIPPED = {"invalid_timeframe.vtt": 1, "invalid_timeframe.srt": 1, "missing_timeframe.srt": 1}


def _norm(text: str) -> str:
    return " ".join(html.unescape(text).split())


def _ours(subtitles):
    return [(s.start, s.end, s.text) for s in subtitles.segments]


def _webvtt(path: Path):
    captions = webvtt.read(str(path)) if path.suffix == ".vtt" else webvtt.from_srt(str(path))
    cues = [(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, _norm(c.text))
            for c in captions]
    return sorted((c for c in cues if c[2]), key=lambda c: (c[0], c[1]))


def _pysubs2(path: Path):
    cues = [(e.start / 1000, e.end / 1000, _norm(e.plaintext)) for e in pysubs2.load(str(path))
            if not e.is_comment]
    return sorted((c for c in cues if c[2]), key=lambda c: (c[0], c[1]))


@pytest.mark.parametrize("name", VTT_FILES)
def test_webvtt_files_read_as_webvtt_py_reads_them(name):
    path = DATA / name
    parsed = read_subtitles(path)
    if parsed.youtube_auto:  # the cue list before the rolling rule is webvtt-py's; the rule is tested below
        assert name == "youtube_dl.vtt"
        parsed = parse_subtitles(path.read_text(encoding="utf-8"), "vtt", str(path), rolling=False)
    assert _ours(parsed) == _webvtt(path)
    assert parsed.skipped == SKIPPED.get(name, 0)


@pytest.mark.parametrize("name", SRT_FILES)
def test_srt_files_read_as_pysubs2_and_webvtt_py_read_them(name):
    path = DATA / name
    parsed = read_subtitles(path)
    reference = _webvtt(path)
    if name == "missing_timeframe.srt":
        # Block "2 / Caption text #2" has no timing line: both libraries fold it into cue 1's text (shown at
        # cue 1's time); vidla skips and counts it.
        assert reference[0][2] == _pysubs2(path)[0][2] == "Caption text #1 2 Caption text #2"
        reference[0] = (0.5, 7.0, "Caption text #1")
    assert _ours(parsed) == reference
    if name not in SKIPPED:  # pysubs2 folds a malformed cue into the one before; elsewhere it agrees
        assert _ours(parsed) == _pysubs2(path)
    assert parsed.skipped == SKIPPED.get(name, 0)


def test_timing_line_without_a_blank_line_before_it_starts_a_cue():
    parsed = read_subtitles(DATA / "youtube_dl.vtt")
    assert parsed.youtube_auto
    starts = [s.start for s in parsed.segments]
    assert 304.08 in starts  # "00:05:04.080 --> ..." directly after the previous cue's text
    # The rolling rule: each line once.
    assert [s.text for s in parsed.segments] == ["yeah", "what", "this will happen is I'm telling"]
    assert parsed.segments[2].word_starts == pytest.approx((304.08, 304.199, 304.379, 304.62, 304.86, 305.069))


def test_ttml_and_ass_read_as_pysubs2_reads_them():
    assert _ours(read_subtitles(DATA / "ttml_example.ttml")) == _pysubs2(DATA / "ttml_example.ass")
    ass = _pysubs2(DATA / "ttml_example.ass")
    assert _ours(read_subtitles(DATA / "ttml_example.ass")) == ass and len(ass) > 3


def test_identical_repeated_cues_are_kept_outside_youtube_auto_captions():
    text = "1\n00:00:01,000 --> 00:00:02,000\nNo!\n\n2\n00:00:02,000 --> 00:00:03,000\nNo!\n"
    assert [s.text for s in parse_subtitles(text, "srt").segments] == ["No!", "No!"]
    vtt = "WEBVTT\n\n00:01.000 --> 00:02.000\nNo!\nNo!\n\n00:02.000 --> 00:03.000\nNo!\n"
    assert [s.text for s in parse_subtitles(vtt, "vtt").segments] == ["No! No!", "No!"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_with_a_byte_order_mark(tmp_path, encoding):
    text = (DATA / "sample.vtt").read_text(encoding="utf-8")
    path = tmp_path / "sample.vtt"
    path.write_bytes(("\ufeff" + text).encode(encoding))
    assert _ours(read_subtitles(path)) == _ours(read_subtitles(DATA / "sample.vtt"))


def test_undeclared_encoding_names_the_file(tmp_path):
    path = tmp_path / "latin.srt"
    path.write_bytes("1\n00:00:01,000 --> 00:00:02,000\ncaf\u00e9\n".encode("cp1252"))
    with pytest.raises(SubtitleError, match="latin.srt: not UTF-8"):
        read_subtitles(path)


# -- property-based fuzzing: any text either parses or raises SubtitleError naming the source ------------------------

_cue_lines = st.sampled_from(["", "WEBVTT", "NOTE x", "1", "00:00:01.000 --> 00:00:02.000", "00:01,5 --> 00:02,0",
                              "00:00:03,000 --> soon", "<i>hi</i> &amp;", "a<00:00:01.500><c> b</c>", "-->",
                              "[Script Info]", "Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,hi", "{\\an8}x",
                              '{"events": [{"tStartMs": 5, "segs": [{"utf8": "x"}]}]}', "\ufeff", "\r"])
_texts = st.one_of(st.text(max_size=120), st.lists(_cue_lines | st.text(max_size=12), max_size=14).map("\n".join))


@settings(max_examples=200, deadline=None)
@example(text='{"events": [1, {"tStartMs": "x"}, {"segs": [{"utf8": 5}]}, {"tStartMs": 1e400}]}', format_="json3")
@example(text='{"events": {"a": 1}}', format_="json3")
@given(text=_texts, format_=st.sampled_from(["srt", "vtt", "ass", "ssa", "ttml", "sami", "json3"]))
def test_fuzz_any_text_parses_or_names_the_source(text, format_):
    try:
        parsed = parse_subtitles(text, format_, "fuzz.sub")
    except SubtitleError as e:
        assert str(e).startswith("fuzz.sub: ")
        return
    assert parsed.skipped >= 0
    for segment in parsed.segments:
        assert 0 <= segment.start <= segment.end and segment.text == segment.text.strip() and segment.text


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200), suffix=st.sampled_from([".srt", ".vtt", ".json3", ".ass"]))
def test_fuzz_any_bytes_in_a_file(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"f{suffix}"
    path.write_bytes(data)
    try:
        read_subtitles(path)
    except SubtitleError as e:
        assert str(e).startswith(f"{path}: ")


def test_malformed_json3_events_are_skipped_and_counted():
    text = '{"events": [1, {"tStartMs": "x"}, {"tStartMs": 0, "dDurationMs": 900, "segs": [{"utf8": "kept"}]}, ' \
           '{"segs": [{"utf8": 5}]}, {"tStartMs": 1e400}]}'
    parsed = parse_subtitles(text, "json3")
    assert [(s.start, s.end, s.text) for s in parsed.segments] == [(0.0, 0.9, "kept")] and parsed.skipped == 4

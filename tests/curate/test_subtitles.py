import json

import pytest
from _curate_synth import make_video, to_json3, to_srt, to_vtt, transcript

from vidla.curate.subtitles import (SubtitleError, clean_text, find_sidecar, parse_subtitles, parse_timestamp,
                                    read_embedded, read_json3, read_srt, read_subtitle_file, read_vtt)

SRT = """\ufeff1
00:00:01,000 --> 00:00:03,500
<i>hello there</i>

2
00:00:04,000 --> 00:00:06,250 X1:100 X2:200
{\\an8}general &amp; kenobi
you are a bold one

3
00:01:02,005 --> 00:01:03,000
"""

# YouTube's automatic WebVTT: word timestamps inline, and every line shown twice as it scrolls up.
YOUTUBE_VTT = """WEBVTT
Kind: captions
Language: en

00:00:00.320 --> 00:00:02.270 align:start position:0%
\u0020
so<00:00:00.640><c> today</c><00:00:01.040><c> we</c><00:00:01.280><c> cook</c>

00:00:02.270 --> 00:00:02.280 align:start position:0%
so today we cook
\u0020

00:00:02.280 --> 00:00:04.550 align:start position:0%
so today we cook
rice<00:00:02.800><c> and</c><00:00:03.300><c> beans</c>

00:00:04.550 --> 00:00:04.560 align:start position:0%
rice and beans
\u0020
"""


def test_timestamps_and_markup():
    assert parse_timestamp("01:02:03,450") == pytest.approx(3723.45)
    assert parse_timestamp("02:03.4") == pytest.approx(123.4)
    with pytest.raises(ValueError):
        parse_timestamp("12 seconds")
    assert clean_text("{\\i1}a\\Nb <b>c</b> &lt;d&gt;  ") == "a b c <d>"


def test_srt_real_format():
    segments = read_srt(SRT)
    assert [(s.start, s.end, s.text) for s in segments] == [
        (1.0, 3.5, "hello there"), (4.0, 6.25, "general & kenobi you are a bold one")]
    assert segments[0].word_starts is None


def test_srt_bad_cue_is_skipped_and_counted():
    parsed = parse_subtitles("1\n00:00:01,000 --> soon\nhi\n\n2\n00:00:02,000 --> 00:00:03,000\nok\n", "srt")
    assert [(s.start, s.text) for s in parsed.segments] == [(2.0, "ok")] and parsed.skipped == 1


def test_youtube_vtt_word_times_and_rolling_duplicates():
    segments = read_vtt(YOUTUBE_VTT)
    words = " ".join(s.text for s in segments).split()
    assert words == ["so", "today", "we", "cook", "rice", "and", "beans"]  # each line once
    assert segments[0].word_starts == pytest.approx((0.32, 0.64, 1.04, 1.28))
    assert segments[1].word_starts == pytest.approx((2.28, 2.8, 3.3))


def test_vtt_requires_header():
    with pytest.raises(SubtitleError, match="WEBVTT"):
        read_vtt("00:00.000 --> 00:01.000\nhi\n")


def test_generated_files_in_three_formats_agree(tmp_path):
    script = transcript(seed=3, duration=60)
    words = [w for sentence in script for _, _, w in sentence]
    for name, text in (("a.srt", to_srt(script)), ("a.vtt", to_vtt(script)), ("a.json3", to_json3(script))):
        (tmp_path / name).write_text(text, encoding="utf-8")
        segments = read_subtitle_file(tmp_path / name)
        read_words = [w.strip(".").lower() for s in segments for w in s.text.split()]
        assert read_words == words, name
        assert segments[0].start == pytest.approx(script[0][0][0], abs=1e-3)
        assert segments[-1].end == pytest.approx(script[-1][-1][1], abs=1e-3)
    json3 = read_subtitle_file(tmp_path / "a.json3")
    onsets = [t for s in json3 for t in s.word_starts]
    assert onsets == pytest.approx([s for sentence in script for s, _, _ in sentence], abs=1e-3)


def test_json3_errors_and_empty_events():
    with pytest.raises(SubtitleError, match="json3"):
        read_json3("{}")
    events = {"events": [{"tStartMs": 0, "dDurationMs": 5}, {"tStartMs": 10, "dDurationMs": 5,
                                                              "segs": [{"utf8": "\n"}]}]}
    assert read_json3(json.dumps(events)) == []


def test_unknown_extension(tmp_path):
    (tmp_path / "a.xyz").write_text("x")
    with pytest.raises(SubtitleError, match="unknown subtitle format"):
        read_subtitle_file(tmp_path / "a.xyz")


def test_sidecar_preference(tmp_path):
    video = tmp_path / "talk [1].mp4"
    video.write_bytes(b"")
    assert find_sidecar(video, ["en"]) is None
    for name in ("talk [1].de.vtt", "talk [1].srt", "talk [1].en.json3", "talk [1].en.vtt", "other.srt"):
        (tmp_path / name).write_text("")
    assert find_sidecar(video, ["en"]).name == "talk [1].en.vtt"  # language first, then .srt < .vtt < .json3
    assert find_sidecar(video, ["fr"]).name == "talk [1].srt"  # the untagged file before other languages
    assert find_sidecar(video, ["de", "en"]).name == "talk [1].de.vtt"


def test_embedded_subtitle_stream(tmp_path):
    script = transcript(seed=5, duration=30)
    video = make_video(tmp_path / "v.mkv", 30, srt=to_srt(script), language="eng")
    segments, description = read_embedded(video, ["en"])
    assert "eng" in description
    assert [w for s in segments for w in s.text.split()] == [w for sentence in script for _, _, w in sentence]
    assert segments[0].start == pytest.approx(script[0][0][0], abs=1e-3)


def test_embedded_missing_stream_names_the_file(tmp_path):
    video = make_video(tmp_path / "plain.mp4", 3)
    with pytest.raises(SubtitleError, match="plain.mp4: no subtitle stream"):
        read_embedded(video)

import pytest
from _curate_synth import sentence_spans, to_json3, to_srt, to_vtt, transcript

from vidla.curate.sentences import (AutoPunctuator, PausePunctuator, Word, build_punctuator, label_to_punctuation,
                                    sentences_from_segments, split_sentences, words_from_segments)
from vidla.curate.subtitles import Segment, read_json3, read_srt, read_vtt


@pytest.mark.parametrize("fmt", ["srt", "json3"])
def test_pause_rule_restores_asr_sentences(fmt):
    """ASR text without punctuation: the pause rule finds every sentence, with its times."""
    script = transcript(seed=1, duration=120)
    segments = read_srt(to_srt(script)) if fmt == "srt" else read_json3(to_json3(script))
    sentences = sentences_from_segments(segments, build_punctuator("auto"))
    assert len(sentences) == len(script)
    for sentence, expected, (start, end) in zip(sentences, script, sentence_spans(script)):
        words = [w for _, _, w in expected]
        assert sentence.text == (" ".join(words) + ".")[0].upper() + (" ".join(words) + ".")[1:]
        assert sentence.start == pytest.approx(start, abs=1e-3)
        assert sentence.end == pytest.approx(end, abs=1e-3)


def test_auto_keeps_existing_punctuation():
    script = transcript(seed=2, duration=60)
    sentences = sentences_from_segments(read_vtt(to_vtt(script)), build_punctuator("auto"))
    assert [s.text.split() for s in sentences] == [
        (" ".join(w for _, _, w in ws) + ".").capitalize().split() for ws in script]


def test_auto_falls_back_when_text_is_unpunctuated():
    words = [Word(i, i + 0.5, "word") for i in range(10)]  # a pause of 0.5 s after each word
    auto = AutoPunctuator(PausePunctuator(0.4), max_words=40)
    assert auto.punctuate(words) == ["word."] * 10
    words[3] = Word(3, 3.5, "end.")  # one sentence end in 10 words: punctuated text, kept as is
    assert auto.punctuate(words)[3] == "end." and auto.punctuate(words)[2] == "word"


def test_long_sentences_split_at_longest_pause():
    words = [Word(i * 0.3, i * 0.3 + 0.3, f"w{i}") for i in range(50)]
    words[30:] = [Word(w.start + 0.2, w.end + 0.2, w.text) for w in words[30:]]  # a pause after w29
    sentences = split_sentences(words, [w.text for w in words], max_words=40)
    assert [len(s.text.split()) for s in sentences] == [30, 20]
    assert sentences[0].end == pytest.approx(words[29].end) and sentences[1].start == pytest.approx(words[30].start)


def test_abbreviations_do_not_end_sentences():
    words = [Word(i, i + 1, t) for i, t in enumerate("we met dr. smith today. he was late".split())]
    sentences = split_sentences(words, [w.text for w in words])
    assert [s.text for s in sentences] == ["We met dr. smith today.", "He was late."]


def test_words_spread_over_cues_and_clipped_at_overlaps():
    words = words_from_segments([Segment(0.0, 4.0, "aaa b"), Segment(3.0, 5.0, "c")])
    assert [w.text for w in words] == ["aaa", "b", "c"]
    assert words[0].start == 0.0 and words[1].end == pytest.approx(3.0)  # cut at the next cue's start
    assert words[0].end == pytest.approx(2.0)  # 4 of 6 characters (+1 for the space each) of 3 seconds


@pytest.mark.parametrize("label,expected", [
    ("O", ("", False)), ("0", ("", False)), (".", (".", False)), ("?", ("?", False)),
    ("PERIOD", (".", False)), ("I-COMMA", (",", False)), ("QUESTION", ("?", False)),
    (".U", (".", True)), ("OU", ("", True)), (",O", (",", False))])
def test_label_schemes(label, expected):
    assert label_to_punctuation(label) == expected


def test_unknown_punctuator():
    with pytest.raises(ValueError, match="unknown punctuator"):
        build_punctuator("magic")

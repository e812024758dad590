import statistics

import pytest
from _curate_synth import sentence_spans, transcript

from vidla.curate.clipping import DEFAULT_SCALES, Scale, clip_subtitle, cut_clips
from vidla.curate.sentences import Sentence


def _sentences(seed: int, duration: float) -> list[Sentence]:
    return [Sentence(a, b, f"s{i}.") for i, (a, b) in enumerate(sentence_spans(transcript(seed, duration)))]


@pytest.mark.parametrize("scale", DEFAULT_SCALES, ids=lambda s: s.name)
def test_clips_fall_on_sentence_boundaries_within_bounds(scale):
    for seed in range(3):
        sentences = _sentences(seed, 600)
        clips = cut_clips(sentences, scale)
        assert clips
        starts = {s.start for s in sentences}
        ends = {s.end for s in sentences}
        for previous, clip in zip([None] + clips[:-1], clips):
            assert clip.start in starts and clip.end in ends
            assert clip.start == sentences[clip.first].start and clip.end == sentences[clip.last - 1].end
            assert scale.min <= clip.duration <= scale.max
            if previous is not None:
                assert previous.last <= clip.first  # consecutive, never overlapping
        covered = sum(c.last - c.first for c in clips)
        assert covered >= len(sentences) - 2  # a partition: at most an edge sentence or two left out


def test_scales_partition_independently_and_means_near_targets():
    sentences = _sentences(7, 3600)
    for scale in DEFAULT_SCALES:
        clips = cut_clips(sentences, scale)
        mean = statistics.mean(c.duration for c in clips)
        assert abs(mean - scale.target) / scale.target < 0.1, (scale.name, mean)
        assert sum(c.last - c.first for c in clips) == len(sentences)  # every sentence in exactly one clip


def test_sentence_longer_than_max_is_left_out():
    sentences = [Sentence(0, 5, "a."), Sentence(6, 10, "b."), Sentence(11, 40, "too long."), Sentence(41, 50, "c.")]
    clips = cut_clips(sentences, Scale("s", 10, 5, 20))
    assert [(c.first, c.last) for c in clips] == [(0, 2), (3, 4)]
    assert clip_subtitle(sentences, clips[0]) == "a. b."


def test_clips_do_not_span_long_silences():
    sentences = [Sentence(0, 6, "a."), Sentence(30, 36, "b.")]
    assert cut_clips(sentences, Scale("s", 20, 5, 60), max_gap=10) == [
        c for c in cut_clips(sentences, Scale("s", 20, 5, 60), max_gap=10) if c.last - c.first == 1]
    assert len(cut_clips(sentences, Scale("s", 20, 5, 60), max_gap=30)) == 1


def test_empty_and_invalid():
    assert cut_clips([], DEFAULT_SCALES[0]) == []
    with pytest.raises(ValueError, match="min <= target <= max"):
        Scale("bad", 10, 20, 30)

"""LF-VILA's MTC loss against a computation written here from SPEC 5.1's definition, and its draws."""

from __future__ import annotations

import math

import pytest
import torch

from vidla.train.mtc import IGNORE, MTCDraw, MultimodalTemporalContrastive, draw, mtc_loss, temporal_targets


def reference_mtc(video, text, anchors, candidates, other, temperature=0.05, others=3):
    """Per direction ("t2v": text anchors, video candidates; "v2t" the reverse), with loops over samples and
    anchors: candidates = own clips then one clip of each of the `others` preceding samples; target = the own
    candidate with the smallest |index - anchor index|, none on a tie; the mean CE over anchors with a target."""
    batch = video.shape[0]
    unit = lambda x: x / x.norm()  # noqa: E731
    out = {}
    for name, anchor_side, candidate_side in (("t2v", text, video), ("v2t", video, text)):
        losses = []
        for i in range(batch):
            pool = [candidate_side[i, c] for c in candidates[i]]
            pool += [candidate_side[(i - s) % batch, other[(i - s) % batch]] for s in range(1, others + 1)]
            for a in anchors[i]:
                distances = [abs(c - a) for c in candidates[i]]
                if distances.count(min(distances)) > 1:
                    continue
                target = distances.index(min(distances))
                logits = [float(unit(anchor_side[i, a]) @ unit(p)) / temperature for p in pool]
                losses.append(-logits[target] + math.log(sum(math.exp(v) for v in logits)))
        out[name] = sum(losses) / len(losses)
    return out


def as_draw(anchors, candidates, other) -> MTCDraw:
    return MTCDraw(torch.tensor(anchors), torch.tensor(candidates), torch.tensor(other))


def test_targets_are_the_temporally_closest_own_candidate_and_ties_are_ignored():
    anchors = torch.tensor([[0, 3], [1, 2], [2, 0]])
    candidates = torch.tensor([[1, 2], [0, 2], [3, 1]])
    # sample 0: anchor 0 -> clip 1 (index 0), anchor 3 -> clip 2 (index 1); sample 1: anchor 1 is 1 away from
    # both 0 and 2 (ignored), anchor 2 is clip 2 itself; sample 2: anchor 2 is 1 away from 3 and 1 (ignored),
    # anchor 0 -> clip 1 (index 1)
    assert temporal_targets(anchors, candidates).tolist() == [[0, 1], [IGNORE, 1], [IGNORE, 1]]


def test_loss_equals_the_definition_in_both_directions():
    torch.manual_seed(0)
    video, text = torch.randn(5, 4, 8), torch.randn(5, 4, 8)
    anchors, candidates, other = [[0, 3], [1, 2], [2, 0], [3, 1], [0, 1]], \
        [[1, 2], [0, 2], [3, 1], [2, 0], [3, 2]], [2, 0, 3, 1, 1]
    got = mtc_loss(video, text, as_draw(anchors, candidates, other))
    expected = reference_mtc(video, text, anchors, candidates, other)
    assert abs(expected["t2v"] - expected["v2t"]) > 0.1  # dropping either direction would be caught
    assert got.item() == pytest.approx(expected["t2v"] + expected["v2t"], rel=1e-5)


def test_hand_built_features_with_a_known_closest_clip():
    # text clip j and video clip j share a direction, other samples' clips point elsewhere: every anchor's
    # target (the own candidate closest in time) is the candidate equal to the anchor clip -> near-zero loss
    clips, dim = 4, 16
    basis = torch.eye(dim)
    video = torch.stack([basis[s * clips: (s + 1) * clips] for s in range(3)])  # [3 samples, 4 clips, 16]
    text = video.clone()
    anchors = [[0, 3], [1, 2], [2, 3]]
    candidates = [[0, 3], [1, 2], [3, 2]]  # each anchor is one of its own candidates
    picks = as_draw(anchors, candidates, [1, 1, 1])
    assert mtc_loss(video, text, picks, others=2).item() < 1e-6
    # a sentence matched with the wrong (not closest) clip costs: swap the two own candidates' video features
    wrong = video.clone()
    wrong[0, [0, 3]] = wrong[0, [3, 0]]
    assert mtc_loss(wrong, text, picks, others=2).item() > 1.0


def test_ignored_anchors_do_not_count():
    torch.manual_seed(1)
    video, text = torch.randn(4, 4, 8), torch.randn(4, 4, 8)
    picks = as_draw([[1, 0], [0, 3], [2, 0], [3, 1]], [[0, 2], [1, 2], [1, 3], [0, 2]], [0, 1, 2, 3])
    assert temporal_targets(picks.anchors, picks.candidates)[0, 0] == IGNORE  # anchor 1 between 0 and 2
    base = mtc_loss(video, text, picks)
    moved_text, moved_video = text.clone(), video.clone()
    moved_text[0, 1] = torch.randn(8)   # the ignored anchor's sentence (it is no candidate of anyone)
    moved_video[0, 1] = torch.randn(8)  # and its clip
    assert mtc_loss(moved_video, moved_text, picks).item() == pytest.approx(base.item(), rel=1e-6)
    moved_text[0, 0] = torch.randn(8)   # a counted anchor changes the loss
    assert mtc_loss(video, moved_text, picks).item() != pytest.approx(base.item(), rel=1e-3)


def test_no_valid_anchor_gives_zero_not_nan():
    picks = as_draw([[1], [1]], [[0, 2], [2, 0]], [0, 0])
    loss = mtc_loss(torch.randn(2, 3, 4, requires_grad=True), torch.randn(2, 3, 4), picks, others=1)
    assert loss.item() == 0.0


def test_draws_are_distinct_clips_and_fixed_by_the_generator():
    a = draw(6, 4, 2, 2, torch.Generator().manual_seed(3))
    b = draw(6, 4, 2, 2, torch.Generator().manual_seed(3))
    for x, y in zip((a.anchors, a.candidates, a.other), (b.anchors, b.candidates, b.other)):
        assert torch.equal(x, y)
    assert a.anchors.shape == (6, 2) and a.candidates.shape == (6, 2) and a.other.shape == (6,)
    assert all(len(set(row.tolist())) == 2 for row in a.anchors) and int(a.anchors.max()) < 4
    with pytest.raises(ValueError, match="3 anchors .* from 2 clips"):
        draw(2, 2, 3, 2)


def test_local_parts_sum_to_the_global_loss():
    # what each of 2 ranks computes in local mode (its own rows, normalised by the global count) sums to the
    # global loss; the module multiplies by the world size because DDP averages over ranks
    torch.manual_seed(2)
    video, text = torch.randn(6, 4, 8), torch.randn(6, 4, 8)
    picks = draw(6, 4, generator=torch.Generator().manual_seed(0))
    total = mtc_loss(video, text, picks)
    valid = int((temporal_targets(picks.anchors, picks.candidates) != IGNORE).sum())
    parts = [mtc_loss(video, text, picks, rows=slice(r * 3, r * 3 + 3), normaliser=valid) for r in range(2)]
    assert (parts[0] + parts[1]).item() == pytest.approx(total.item(), rel=1e-6)


def test_module_weights_the_loss_and_rejects_small_batches():
    torch.manual_seed(4)
    video, text = torch.randn(5, 4, 8), torch.randn(5, 4, 8)
    module = MultimodalTemporalContrastive(weight=0.25)
    got = module(video, text, generator=torch.Generator().manual_seed(7))
    picks = draw(5, 4, generator=torch.Generator().manual_seed(7))
    assert got.item() == pytest.approx(0.25 * mtc_loss(video, text, picks).item(), rel=1e-6)
    with pytest.raises(ValueError, match="3 other samples but the batch has 3"):
        module(video[:3], text[:3])

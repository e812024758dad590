"""Zero-shot classification, multiple choice, the linear head with multi-view testing, caching and batching."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vidla
from vidla.data.benchmarks.base import BenchmarkSplit
from vidla.data.manifest import ClipRecord
from vidla.data.synthetic import write_video
from vidla.evaluate import (
    KINETICS_TEMPLATES,
    KINETICS_VIEWS,
    SSV2_VIEWS,
    ClipSampling,
    EmbeddingCache,
    Embedder,
    VideoClassifier,
    evaluate_classifier,
    evaluate_zero_shot,
    model_fingerprint,
    paragraph_split,
)
from vidla.evaluate.embed import ClipDataset
from vidla.evaluate.tasks import drop_missing
from vidla.evaluate.zeroshot import (
    class_embeddings,
    cosine_scores,
    multiple_choice_correct,
    multiple_choice_scores,
    prompts_for,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return vidla.create_model("vidla-tiny", temporal="meanpool", num_frames=16).eval()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three wide synthetic videos (96x48, 25 fps) of 2, 3 and 4 seconds."""
    folder = tmp_path_factory.mktemp("clips")
    return [ClipRecord(video=str(write_video(folder / f"clip{i}.mp4", num_frames=n, fps=25.0, width=96, height=48)),
                       id=f"clip{i}", label=i % 2) for i, n in enumerate((50, 75, 100))]


def classification_split(clips):
    return BenchmarkSplit("toy", "val", "classification", clips[0].resolve("."), clips, class_names=["a", "b"])


# -- zero-shot -------------------------------------------------------------------------------------------------------


def test_kinetics_templates_are_clips_28():
    assert len(KINETICS_TEMPLATES) == 28 == len(set(KINETICS_TEMPLATES))
    assert KINETICS_TEMPLATES[0] == "a photo of {}."
    assert "a demonstration of a person practicing {}." in KINETICS_TEMPLATES
    assert all(t.count("{}") == 1 and t.endswith(".") for t in KINETICS_TEMPLATES)


def test_class_embedding_is_the_normalised_mean_of_normalised_prompts():
    assert prompts_for(["x", "y"], ["a {}", "b {}."]) == ["a x", "b x.", "a y", "b y."]
    with pytest.raises(ValueError, match="exactly one"):
        prompts_for(["x"], ["no slot"])
    features = torch.randn(3 * 4, 8)
    expected = torch.stack([F.normalize(F.normalize(features[c * 4:(c + 1) * 4], dim=-1).mean(0), dim=0)
                            for c in range(3)])
    torch.testing.assert_close(class_embeddings(features, 3), expected)


def test_zero_shot_scores_average_normalised_views():
    views = torch.randn(2, 3, 8)
    classes = torch.randn(5, 8)
    pooled = F.normalize(F.normalize(views, dim=-1).mean(1), dim=-1)
    torch.testing.assert_close(cosine_scores(views, classes), pooled @ F.normalize(classes, dim=-1).T)


def test_multiple_choice_picks_the_most_similar_option_and_ties_count_as_wrong():
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    options = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    scores = multiple_choice_scores(video, options, [0, 0, 1, 1, 1])
    assert [len(s) for s in scores] == [2, 3]
    # Video 0: option 0 is best. Video 1: options 1 and 2 (its 2nd and 3rd) tie at the top.
    np.testing.assert_array_equal(multiple_choice_correct(scores, [0, 1]), [True, False])
    with pytest.raises(ValueError, match="outside"):
        multiple_choice_correct(scores, [2, 0])


# -- classification fine-tuning support ------------------------------------------------------------------------------


def test_multi_view_logits_are_the_mean_of_each_views_logits(model):
    classifier = VideoClassifier(model, num_classes=4).eval()
    views = torch.randn(2, 3, 2, 3, 32, 32)  # [B, V, T, 3, S, S]
    with torch.no_grad():
        one_by_one = torch.stack([torch.stack([classifier(views[b, v][None])[0] for v in range(3)]).mean(0)
                                  for b in range(2)])
        torch.testing.assert_close(classifier(views), one_by_one, rtol=1e-5, atol=1e-5)


def test_init_from_text_starts_at_the_zero_shot_classifier(model):
    classifier = VideoClassifier(model, num_classes=3)
    classes, video = torch.randn(3, 64), torch.randn(5, 64)
    classifier.init_from_text(classes, scale=1.0)
    with torch.no_grad():
        torch.testing.assert_close(classifier.logits_of_features(video), cosine_scores(video, classes))
    with pytest.raises(ValueError, match="normalize"):
        VideoClassifier(model, 3, normalize=False).init_from_text(classes)


@pytest.mark.parametrize("sampling, views", [(KINETICS_VIEWS, 15), (SSV2_VIEWS, 6)])
def test_test_views_shapes(clips, sampling, views):
    item = ClipDataset(clips[2:], sampling, image_size=32)[0]
    assert item["video"].shape == (views, 16, 3, 32, 32)
    assert item["duration"] == pytest.approx(4.0)
    # The three spatial crops of a wide video are different pictures.
    assert not torch.equal(item["video"][0], item["video"][1]) and not torch.equal(item["video"][0], item["video"][2])


def test_evaluate_classifier_equals_the_classifier_on_the_views(model, clips, tmp_path):
    classifier = VideoClassifier(model, num_classes=2).train()  # as inside a training loop
    sampling = ClipSampling(num_frames=4, method="dense", temporal_views=2, spatial_views=3, stride=2)
    embedder = Embedder(model, cache=EmbeddingCache(tmp_path), batch_size=4, num_workers=0, progress=False)
    result = evaluate_classifier(embedder, classifier, classification_split(clips), sampling)
    assert classifier.training and model.training  # the training mode is given back
    classifier.eval()
    assert set(result.metrics) == {"top1", "mean_class_top1"} and result.counts == {"videos": 3, "classes": 2}
    dataset = ClipDataset(clips, sampling, image_size=32)
    with torch.no_grad():
        direct = torch.cat([classifier(dataset[i]["video"][None]) for i in range(3)])
    hits = (direct.argmax(1) == torch.tensor([c.label for c in clips])).numpy()
    np.testing.assert_array_equal(result.per_query["hit"], hits)
    np.testing.assert_allclose(result.per_query["duration"], [2.0, 3.0, 4.0])


# -- splits ----------------------------------------------------------------------------------------------------------


def test_paragraph_split_joins_each_videos_texts_in_order():
    videos = [ClipRecord(video=f"v{i}.mp4", id=f"v{i}") for i in range(3)]
    split = BenchmarkSplit("toy", "test", "retrieval", None, videos, texts=["b1", "a1", "a2 ", "b2"],
                           text_to_video=[1, 0, 0, 1])
    paragraphs = paragraph_split(split)
    assert paragraphs.texts == ["a1 a2", "b1 b2"] and paragraphs.text_to_video == [0, 1]
    assert paragraph_split(paragraphs).texts == paragraphs.texts


def test_drop_missing_renumbers_texts_and_answers():
    videos = [ClipRecord(video=f"v{i}.mp4", id=f"v{i}") for i in range(3)]
    split = BenchmarkSplit("toy", "mc", "multiple_choice", None, videos, texts=["a0", "a1", "b0", "b1", "c0", "c1"],
                           text_to_video=[0, 0, 1, 1, 2, 2], answers=[1, 2, 5], missing=["v1"])
    kept = drop_missing(split)
    assert [v.id for v in kept.videos] == ["v0", "v2"] and kept.texts == ["a0", "a1", "c0", "c1"]
    assert kept.text_to_video == [0, 0, 1, 1] and kept.answers == [1, 3] and kept.missing == []


# -- caching and batching --------------------------------------------------------------------------------------------


def test_fingerprint_follows_the_weights_not_the_object(model):
    copy = vidla.create_model("vidla-tiny", temporal="meanpool", num_frames=16)
    copy.load_state_dict(model.state_dict())
    assert model_fingerprint(copy) == model_fingerprint(model)
    with torch.no_grad():
        copy.text.ln_final.weight[0] += 1e-3
    assert model_fingerprint(copy) != model_fingerprint(model)


def test_embedder_caches_by_inputs_and_survives_a_corrupt_file(model, clips, tmp_path):
    embedder = Embedder(model, cache=EmbeddingCache(tmp_path), num_workers=0, progress=False)
    first = embedder.texts(["a", "b"])
    assert torch.equal(embedder.texts(["a", "b"]), first)
    embedder.texts(["a", "c"])
    assert [e["cache"] for e in embedder.log] == ["miss", "hit", "miss"]
    path = embedder.log[0]["path"]
    with open(path, "wb") as f:
        f.write(b"not safetensors")
    assert torch.equal(embedder.texts(["a", "b"]), first) and embedder.log[-1]["cache"] == "miss"
    sampling = ClipSampling(num_frames=2)
    embedder.videos(clips[:1], sampling)
    embedder.videos(clips[:1], ClipSampling(num_frames=3))
    embedder.videos(clips[:1], sampling)
    assert [e["cache"] for e in embedder.log[-3:]] == ["miss", "miss", "hit"]


def test_views_are_encoded_batch_size_at_a_time(model, clips):
    seen = []
    encode = model.encode_video

    def recording(video):
        seen.append(len(video))
        return encode(video)

    model.encode_video = recording
    try:
        embedder = Embedder(model, cache=None, batch_size=4, num_workers=0, progress=False)
        result = embedder.videos(clips, ClipSampling(num_frames=2, temporal_views=2, spatial_views=3))
    finally:
        del model.encode_video
    assert result.features.shape == (3, 6, 64) and max(seen) <= 4 and sum(seen) == 18


def test_zero_shot_on_synthetic_clips_runs_through_the_embedder(model, clips):
    embedder = Embedder(model, cache=None, num_workers=0, progress=False)
    result = evaluate_zero_shot(embedder, classification_split(clips), ClipSampling(num_frames=2), ["a {}."])
    assert result.task == "zero_shot_classification" and result.per_query["hit"].shape == (3,)

"""The readers parse small files written here in each benchmark's original format (docs/datasets.md)."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from vidla.cli import main
from vidla.data.benchmarks import AnnotationsMissing, benchmark_splits, list_benchmarks, load_benchmark
from vidla.data.synthetic import write_video
from vidla.data.video import read_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", num_frames=10, width=32, height=24)


def _place(clip: Path, *paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, path)


def _json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_registry():
    assert list_benchmarks() == ["msrvtt", "didemo", "activitynet", "msvd", "vatex", "kinetics400", "ssv2", "manifest"]
    assert "test-1k" in benchmark_splits("MSR-VTT")
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("imagenet", ".")


# MSR-VTT ------------------------------------------------------------------------------------------------------------

def _msrvtt(root: Path, clip: Path) -> Path:
    videos = [{"category": 1, "url": "https://youtu.be/x", "video_id": f"video{i}", "start time": 1.0 * i,
               "end time": 10.0 + i, "split": "train" if i < 3 else "validate" if i == 3 else "test", "id": i}
              for i in range(6)]
    sentences = [{"caption": f"caption {j} of video {i}", "video_id": f"video{i}", "sen_id": 10 * i + j}
                 for i in range(6) for j in range(3)]
    _json(root / "msrvtt_data" / "MSRVTT_data.json", {"info": {"year": "2016"}, "videos": videos,
                                                      "sentences": sentences[::-1]})  # order comes from sen_id
    _csv(root / "msrvtt_data" / "MSRVTT_train.9k.csv", ["video_id"], [["video0"], ["video1"], ["video2"]])
    _csv(root / "msrvtt_data" / "MSRVTT_JSFUSION_test.csv", ["key", "vid_key", "video_id", "sentence"],
         [["ret0", "msr5", "video5", "a man is talking"], ["ret1", "msr4", "video4", "a dog runs "]])
    (root / "msrvtt_data" / "msrvtt_mc_test.jsonl").write_text(
        json.dumps({"qid": "mc0", "clip_name": "video5", "answer": 2, "options": list("abcde")}) + "\n")
    _place(clip, *[root / "MSRVTT_Videos" / f"video{i}.mp4" for i in (0, 1, 2, 3, 5)])  # video4 is missing
    return root


def test_msrvtt_train_9k_and_test_1k(tmp_path, clip):
    root = _msrvtt(tmp_path, clip)
    train = load_benchmark("msrvtt", root, "train-9k")
    assert [v.id for v in train.videos] == ["video0", "video1", "video2"]
    assert train.videos[1].texts["caption"] == ["caption 0 of video 1", "caption 1 of video 1", "caption 2 of video 1"]
    assert len(train.texts) == 9 and train.text_to_video[:4] == [0, 0, 0, 1] and not train.missing
    assert Path(train.videos[0].video) == root / "MSRVTT_Videos" / "video0.mp4"
    test = load_benchmark("msrvtt", root)  # the default split: 1k-A
    assert test.split == "test-1k" and test.task == "retrieval"
    assert test.texts == ["a man is talking", "a dog runs"] and test.text_to_video == [0, 1]
    assert test.missing == ["video4"]
    assert test.video_to_texts == [[0], [1]]


def test_msrvtt_official_splits_and_multiple_choice(tmp_path, clip):
    root = _msrvtt(tmp_path, clip)
    assert [v.id for v in load_benchmark("msrvtt", root, "validate").videos] == ["video3"]
    assert [v.id for v in load_benchmark("msrvtt", root, "test").videos] == ["video4", "video5"]
    choice = load_benchmark("msrvtt", root, "mc-test")
    assert choice.task == "multiple_choice" and choice.texts == list("abcde") and choice.answers == [2]


def test_msrvtt_from_the_original_videodatainfo_files(tmp_path, clip):
    root = _msrvtt(tmp_path, clip)
    data = json.loads((root / "msrvtt_data" / "MSRVTT_data.json").read_text())
    (root / "msrvtt_data" / "MSRVTT_data.json").unlink()
    is_test = {v["video_id"] for v in data["videos"] if v["split"] == "test"}
    _json(root / "train_val_videodatainfo.json",
          {"videos": [v for v in data["videos"] if v["video_id"] not in is_test],
           "sentences": [s for s in data["sentences"] if s["video_id"] not in is_test]})
    _json(root / "test_videodatainfo.json", {"videos": [v for v in data["videos"] if v["video_id"] in is_test],
                                             "sentences": [s for s in data["sentences"] if s["video_id"] in is_test]})
    assert [v.id for v in load_benchmark("msrvtt", root, "test").videos] == ["video4", "video5"]
    assert len(load_benchmark("msrvtt", root, "train-9k").texts) == 9


def test_msrvtt_on_real_clips(tmp_path, realdata):
    """The 1k-A reader and the multiple-choice reader on the two real MSR-VTT clips of ../shared/realdata."""
    (tmp_path / "videos").symlink_to(realdata / "videos")
    choices = "msrvtt_multi_choice_qa.jsonl"
    shutil.copyfile(realdata / "annotations" / choices, tmp_path / choices)
    captions = {v["file"].split("/")[-1][:-4]: v["captions"]
                for v in json.loads((realdata / "MANIFEST.json").read_text())["videos"] if "video97" in v["file"]}
    _csv(tmp_path / "MSRVTT_JSFUSION_test.csv", ["key", "vid_key", "video_id", "sentence"],
         [[f"ret{i}", f"msr{video[5:]}", video, caps[0]] for i, (video, caps) in enumerate(sorted(captions.items()))])
    test = load_benchmark("msrvtt", tmp_path, "test-1k")
    assert [v.id for v in test.videos] == ["video9770", "video9771"] and not test.missing
    assert test.texts[0] == "a person is connecting something to system"
    assert read_clip(test.videos[1].video, 4).frames.shape[0] == 4
    choice = load_benchmark("msrvtt", tmp_path, "mc-test")
    assert choice.answers == [0, 5 + 2] and len(choice.texts) == 10


# DiDeMo, ActivityNet ------------------------------------------------------------------------------------------------

def test_didemo_paragraphs(tmp_path, clip):
    rows = [{"annotation_id": 1, "description": "a girl waves ", "video": "12@N08_34_ab.mov", "times": [[0, 0], [0, 1]],
             "dl_link": "https://flickr.com/x", "num_segments": 6},
            {"annotation_id": 2, "description": "the camera pans", "video": "56@N01_78_cd.avi", "times": [[2, 3]]},
            {"annotation_id": 3, "description": "she stops", "video": "12@N08_34_ab.mov", "times": [[4, 5]]}]
    _json(tmp_path / "test_data.json", rows)
    _place(clip, tmp_path / "videos" / "12@N08_34_ab.mov.mp4", tmp_path / "videos" / "56@N01_78_cd.mp4")
    split = load_benchmark("didemo", tmp_path)
    assert [v.id for v in split.videos] == ["12@N08_34_ab", "56@N01_78_cd"] and not split.missing
    assert split.texts == ["a girl waves she stops", "the camera pans"] and split.text_to_video == [0, 1]
    assert split.videos[0].extra["times"] == [[[0, 0], [0, 1]], [[4, 5]]]


def test_activitynet_paragraphs_in_time_order(tmp_path, clip):
    _json(tmp_path / "val_1.json", {
        "v_abc": {"duration": 30.0, "timestamps": [[10.5, 20.0], [0.2, 9.0]], "sentences": [" He jumps.", "He runs."]},
        "v_def": {"duration": 12.0, "timestamps": [[0, 12.0]], "sentences": ["A cat sleeps."]},
        "v_gone": {"duration": 5.0, "timestamps": [[0, 5.0]], "sentences": ["Nothing."]}})
    _place(clip, tmp_path / "videos" / "v_abc.mp4", tmp_path / "videos" / "def.mkv")
    split = load_benchmark("activitynet", tmp_path)
    assert split.split == "val1" and split.texts == ["He runs. He jumps.", "A cat sleeps.", "Nothing."]
    assert Path(split.videos[1].video).name == "def.mkv" and split.missing == ["v_gone"]
    with pytest.raises(AnnotationsMissing, match="train.json"):
        load_benchmark("activitynet", tmp_path, "train")


# MSVD, VATEX --------------------------------------------------------------------------------------------------------

def _msvd(root: Path, clip: Path) -> None:
    (root / "AllVideoDescriptions.txt").write_text(
        "# Microsoft Research Video Description Corpus\n# VideoID Description\n"
        "aa_1_5 a man cooks\naa_1_5 someone is cooking\nbb_2_9 a cat plays\ncc_0_4 a car drives\n"
        "cc_0_4 a vehicle moves\ncc_0_4 traffic\n", encoding="utf-8")
    (root / "youtube_mapping.txt").write_text("aa_1_5 vid1\nbb_2_9 vid1201\ncc_0_4 vid1301\n")
    _place(clip, *[root / "YouTubeClips" / f"{name}.avi" for name in ("aa_1_5", "bb_2_9", "cc_0_4")])


def test_msvd_splits_by_mapping_and_lists(tmp_path, clip):
    _msvd(tmp_path, clip)
    test = load_benchmark("msvd", tmp_path)
    assert [v.id for v in test.videos] == ["cc_0_4"] and test.texts == ["a car drives", "a vehicle moves", "traffic"]
    assert test.text_to_video == [0, 0, 0]
    assert [v.id for v in load_benchmark("msvd", tmp_path, "train").videos] == ["aa_1_5"]
    (tmp_path / "val_list.txt").write_text("aa_1_5\nbb_2_9\n")
    assert [v.id for v in load_benchmark("msvd", tmp_path, "val").videos] == ["aa_1_5", "bb_2_9"]


def test_msvd_from_the_original_corpus_csv(tmp_path, clip):
    _csv(tmp_path / "MSR Video Description Corpus.csv",
         ["VideoID", "Start", "End", "WorkerID", "Source", "AnnotationTime", "Language", "Description"],
         [["cc", 0, 4, 1, "unverified", 10, "English", "a car drives"],
          ["cc", 0, 4, 2, "unverified", 10, "German", "ein Auto"]])
    (tmp_path / "test_list.txt").write_text("cc_0_4\n")
    assert load_benchmark("msvd", tmp_path).texts == ["a car drives"]


def test_vatex_test_split_and_untrimmed_sources(tmp_path, clip):
    def item(video_id, n):
        return {"videoID": video_id, "enCap": [f"{video_id} en {i}" for i in range(n)], "chCap": ["中文"] * n}

    _json(tmp_path / "vatex_training_v1.0.json", [item("aa_000010_000020", 2)])
    _json(tmp_path / "vatex_validation_v1.0.json", [item("bb_000005_000015", 3), item("cc_000000_000010", 1)])
    (tmp_path / "test_list.txt").write_text("bb_000005_000015\ncc_000000_000010\n")
    _place(clip, tmp_path / "videos" / "bb_000005_000015.mp4", tmp_path / "videos" / "cc.mp4")  # cc untrimmed
    test = load_benchmark("vatex", tmp_path)
    assert [v.id for v in test.videos] == ["bb_000005_000015", "cc_000000_000010"] and not test.missing
    assert (test.videos[0].start, test.videos[1].start, test.videos[1].end) == (None, 0.0, 10.0)
    assert Path(test.videos[1].video).name == "cc.mp4" and len(test.texts) == 4
    train = load_benchmark("vatex", tmp_path, "train")
    assert train.texts == ["aa_000010_000020 en 0", "aa_000010_000020 en 1"] and train.missing == ["aa_000010_000020"]


# Kinetics-400, SSv2 -------------------------------------------------------------------------------------------------

def test_kinetics_csv_classes_and_layouts(tmp_path, clip):
    header = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc"]
    _csv(tmp_path / "annotations" / "train.csv", header,
         [["air drumming", "t1", 5, 15, "train", 0], ["abseiling", "t2", 0, 10, "train", 0]])
    _csv(tmp_path / "annotations" / "validate.csv", header,
         [["abseiling", "v1", 12, 22, "val", 0], ["air drumming", "v2", 3, 13, "val", 0],
          ["air drumming", "v3", 30, 40, "val", 0], ["abseiling", "v4", 1, 11, "val", 0]])
    _place(clip, tmp_path / "val" / "abseiling" / "v1_000012_000022.mp4",  # one folder per class
           tmp_path / "val" / "v2_000003_000013.mp4",  # flat
           tmp_path / "videos" / "v3.mp4")  # untrimmed: read with the csv's window
    split = load_benchmark("kinetics400", tmp_path)
    assert split.task == "classification" and split.class_names == ["abseiling", "air drumming"]
    assert split.labels == [0, 1, 1, 0] and split.missing == ["v4_000001_000011"]
    assert (Path(split.videos[2].video).name, split.videos[2].start, split.videos[2].end) == ("v3.mp4", 30, 40)
    (tmp_path / "annotations" / "kinetics400_classes.txt").write_text("air_drumming\nabseiling\n")
    assert load_benchmark("kinetics400", tmp_path).labels == [1, 0, 0, 1]  # the class file's order wins


def test_kinetics_with_the_real_class_list(tmp_path, realdata, clip):
    shutil.copyfile(realdata / "annotations" / "kinetics400_classes.txt", tmp_path / "kinetics400_classes.txt")
    _csv(tmp_path / "validate.csv", ["label", "youtube_id", "time_start", "time_end", "split"],
         [["arm wrestling", "x", 0, 10, "val"], ["zumba", "y", 0, 10, "val"]])
    split = load_benchmark("kinetics400", tmp_path)
    assert len(split.class_names) == 400 and split.class_names[split.labels[0]] == "arm wrestling"
    assert split.labels[1] == 399


def test_ssv2_templates_to_labels(tmp_path, clip):
    _json(tmp_path / "something-something-v2-labels.json",
          {"Approaching something with your camera": "0", "Putting something on something": "1"})
    _json(tmp_path / "something-something-v2-validation.json", [
        {"id": "74225", "label": "putting a cup on a table", "template": "Putting [something] on [something]",
         "placeholders": ["a cup", "a table"]},
        {"id": "116154", "label": "approaching a door with your camera",
         "template": "Approaching [something] with your camera", "placeholders": ["a door"]}])
    _json(tmp_path / "something-something-v2-test.json", [{"id": "1420"}])
    _place(clip, tmp_path / "20bn-something-something-v2" / "74225.webm")
    split = load_benchmark("ssv2", tmp_path)
    assert split.labels == [1, 0] and split.class_names[1] == "Putting something on something"
    assert split.missing == ["116154"] and split.videos[0].texts["label"] == "putting a cup on a table"
    assert load_benchmark("ssv2", tmp_path, "test").labels == [None]


# vidla data check ---------------------------------------------------------------------------------------------------

def test_data_check_reports_missing_and_unreadable(tmp_path, clip, capsys):
    root = _msrvtt(tmp_path, clip)
    (root / "MSRVTT_Videos" / "video5.mp4").write_text("not a video")
    status = main(["data", "check", "msrvtt", str(root), "--split", "test-1k", "--split", "train-7k",
                   "--json", str(tmp_path / "report.json")])
    out = capsys.readouterr().out
    assert status == 1
    assert "missing: video4" in out and "video5.mp4: cannot open" in out
    assert "train-7k: ANNOTATIONS MISSING" in out and "MSRVTT_train.7k.csv" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["ok"] for r in report] == [False, False]
    assert main(["data", "check", "msrvtt", str(root), "--split", "train-9k", "--level", "decode"]) == 0

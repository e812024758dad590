"""Every manifest field is checked when the manifest is read: the error names the file, the line and the field.

Property-based: any bytes, and any JSON value, either read as valid records or raise ManifestError naming the file.
"""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidla.cli import main
from vidla.data.manifest import ClipRecord, ManifestError, read_manifest, write_manifest
from vidla.data.synthetic import write_video

GOOD = '{"id": "a", "video": "a.mp4", "start": 1, "end": 2, "texts": {"caption": "c", "more": ["x", "y"]}}\n'

BAD_LINES = [  # (line 2 of a manifest, what the error must say)
    (b'{"video": "a.mp4", "texts": {"caption": 5}}', "field 'texts.caption'"),
    (b'{"video": "a.mp4", "texts": {"caption": ["ok", null]}}', "field 'texts.caption'"),
    (b'{"video": "a.mp4", "texts": ["a caption"]}', "field 'texts'"),
    (b'{"video": "a.mp4", "start": -1}', "field 'start'"),
    (b'{"video": "a.mp4", "start": NaN}', "field 'start'"),
    (b'{"video": "a.mp4", "end": Infinity}', "field 'end'"),
    (b'{"video": "a.mp4", "start": "12.5"}', "field 'start'"),
    (b'{"video": "a.mp4", "start": true}', "field 'start'"),
    (b'{"video": "a.mp4", "start": 3, "end": 3}', "field 'end'"),
    (b'{"video": 7}', "field 'video'"),
    (b'{"video": ""}', "field 'video'"),
    (b'{"video": "a.mp4", "id": {"x": 1}}', "field 'id'"),
    (b'{"video": "a.mp4", "label": [1]}', "field 'label'"),
    (b'{"id": "no video"}', "'video'"),
    (b'[1, 2]', "JSON object"),
    (b'{"video": "a.mp4", "texts": {"caption": "caf\xe9"}}', "not UTF-8 text (byte 0xe9 at column 45)"),
    (b'{"video": "a.mp4"', "Expecting ',' delimiter"),  # json's own message, after FILE:LINE
    (b"[" * 100_000, "recursion"),
]


@pytest.mark.parametrize("line, fault", BAD_LINES, ids=[fault for _, fault in BAD_LINES])
def test_bad_field_names_file_line_and_field(tmp_path, line, fault):
    path = tmp_path / "clips.jsonl"
    path.write_bytes(GOOD.encode() + line + b"\n" + GOOD.encode())
    with pytest.raises(ManifestError) as error:
        read_manifest(path)
    assert str(error.value).startswith(f"{path}:2: ") and fault in str(error.value)


def test_valid_fields_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "clips.jsonl"
    path.write_bytes("\ufeff".encode() + GOOD.encode() + b'\n{"video": "b.mp4", "id": 7, "label": "cat"}\n')
    first, second = read_manifest(path)
    assert (first.start, first.end, first.texts["more"]) == (1.0, 2.0, ["x", "y"])
    assert (second.id, second.label, second.texts) == ("7", "cat", {})


def test_verify_names_the_bad_line_and_windows_past_the_end(tmp_path, capsys):
    (tmp_path / "bad.jsonl").write_bytes(GOOD.encode() + b'{"video": "a.mp4", "start": NaN}\n')
    assert main(["data", "verify", str(tmp_path / "bad.jsonl")]) == 2
    assert f"{tmp_path / 'bad.jsonl'}:2: field 'start'" in capsys.readouterr().err
    write_video(tmp_path / "v.mp4", num_frames=25)  # 1 s
    write_manifest(tmp_path / "clips.jsonl", [ClipRecord(video="v.mp4", id="ok", start=0.5),
                                              ClipRecord(video="v.mp4", id="late", start=3.0, end=4.0)])
    assert main(["data", "verify", str(tmp_path / "clips.jsonl"), "--level", "decode"]) == 1
    out = capsys.readouterr().out
    assert "clip late" in out and "starts at 3.000 s" in out and "clip ok" not in out


# -- property-based fuzzing ------------------------------------------------------------------------------------------

_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=8)
_records = st.fixed_dictionaries({}, optional={
    "video": st.one_of(st.text(max_size=6), _json), "id": _json, "start": _json | st.floats(), "end": _json,
    "texts": st.one_of(st.dictionaries(st.text(max_size=4), st.one_of(st.text(max_size=4), st.lists(_json, max_size=2),
                                                                       _json), max_size=3), _json),
    "label": _json})


def _read_or_manifest_error(path):
    try:
        records = read_manifest(path)
    except ManifestError as e:
        assert str(e).startswith(f"{path}:")
        return None
    return records


def _valid(record):
    assert isinstance(record.video, str) and record.video.strip()
    assert record.id is None or isinstance(record.id, str)
    for value in (record.start, record.end):
        assert value is None or (isinstance(value, float) and math.isfinite(value) and value >= 0)
    if record.start is not None and record.end is not None:
        assert record.end > record.start
    for text in record.texts.values():
        assert isinstance(text, str) or (isinstance(text, list) and all(isinstance(t, str) for t in text))


@_FUZZ
@given(data=st.binary(max_size=200))
def test_fuzz_any_bytes(tmp_path, data):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    for record in _read_or_manifest_error(path) or []:
        _valid(record)


@_FUZZ
@given(obj=_records)
def test_fuzz_any_record(tmp_path, obj):
    path = tmp_path / "fuzz.jsonl"
    path.write_text(json.dumps(obj) + "\n", encoding="utf-8")
    for record in _read_or_manifest_error(path) or []:
        _valid(record)

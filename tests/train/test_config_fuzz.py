"""Property-based fuzzing of the training config reader: any YAML file or key=value override either loads into a
config whose every value is in range, or raises ConfigError naming the field."""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidla.config import ConfigError
from vidla.train.config import TrainConfig, load_train_config


def _fields(cls, prefix=""):
    """Every dotted field name of a config dataclass, with its type hint."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(hint):
            out.update(_fields(hint, f"{prefix}{name}."))
        else:
            out[prefix + name] = hint
    return out


FIELDS = _fields(TrainConfig)
SECTIONS = ("model", "data", "optim")
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["bf16", "fp32", "ddp", "fsdp", "uniform", "hta", "0", ""]))
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=4), scalars, max_size=2))
keys = st.one_of(st.sampled_from(sorted(FIELDS)), st.sampled_from(SECTIONS), st.text(max_size=6))


def _nest(flat: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[leaf] = value
    return out


def _check_loaded(config: TrainConfig) -> None:
    """Every value of a loaded config has its field's type and range (an independent restatement)."""
    for name, hint in FIELDS.items():
        value = config
        for part in name.split("."):
            value = getattr(value, part)
        if hint is int:
            assert isinstance(value, int) and not isinstance(value, bool), name
        if hint is float:
            assert isinstance(value, float) and math.isfinite(value), name
    assert config.steps > 0 and config.batch_size > 0 and config.accumulation > 0 and config.checkpoint_every > 0
    assert config.data.num_frames > 0 and config.optim.lr >= 0 and config.precision in ("bf16", "fp32")
    assert 0 <= config.data.max_bad_fraction < 1 and config.data.workers >= 0


def _load(source, *args):
    try:
        config = load_train_config(source, *args)
    except ConfigError as e:
        message = str(e)
        assert any(message.startswith(f) for f in (*FIELDS, *SECTIONS, "TrainConfig", "override", "data.train")) \
            or ": unknown key(s)" in message or "not valid YAML" in message or "top level" in message, message
        return None
    _check_loaded(config)
    return config


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(keys, values, max_size=4))
def test_any_yaml_loads_or_names_the_field(tmp_path, flat):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(_nest(flat)))
    _load(path)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(keys, st.text(max_size=10)), max_size=3))
def test_any_override_loads_or_names_the_field(pairs):
    _load(None, [f"{key}={raw}" for key, raw in pairs])


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_any_text_as_a_yaml_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "config.yaml"
    path.write_text(text, encoding="utf-8")
    _load(path)


@pytest.mark.parametrize("override, field", [
    ("batch_size=0", "batch_size"), ("batch_size=-8", "batch_size"), ("data.num_frames=0", "data.num_frames"),
    ("checkpoint_every=0", "checkpoint_every"), ("steps=-1", "steps"), ("optim.lr=-0.1", "optim.lr"),
    ("precision=fp8", "precision"), ("strategy=zero", "strategy"), ("data.workers=-1", "data.workers"),
    ("data.max_bad_fraction=1.5", "data.max_bad_fraction"), ("optim.lr=.nan", "optim.lr"),
    ("data.text_kinds=[]", "data.text_kinds"), ("threads=0", "threads"), ("data.sampling=every", "data.sampling"),
    ("accumulation=0", "accumulation"), ("optim.betas=[0.9]", "optim.betas"), ("data=5", "data"),
    ("model.name=vidla-b99", "model.name"), ("model.temporal=lstm", "model.temporal"),
])
def test_each_bad_value_is_named(override, field):
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        load_train_config(None, [override])

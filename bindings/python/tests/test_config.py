"""Config: parsing, derived batch sizes, typed getters, paths, errors that name key paths."""

import json

import pytest

import dsabi
from conftest import BASE_CONFIG
from dsabi import JsonKind, Status, WorldSizeSource


def test_derived_micro_batch(config):
    # 32 = micro * 2 * 4
    assert config.get_int("train_micro_batch_size_per_gpu") == 4
    assert config.world_size == 4
    assert config.world_size_source is WorldSizeSource.OPTIONS


@pytest.mark.parametrize(
    "path, getter, expected",
    [
        ("zero_optimization.stage", "get_int", 2),
        ("gradient_accumulation_steps", "get_int", 2),
        ("optimizer.params.lr", "get_float", 0.0003),
        ("optimizer.params.betas[1]", "get_float", 0.95),
        ("bf16.enabled", "get_bool", True),
        ("zero_optimization.overlap_comm", "get_bool", False),
    ],
)
def test_typed_getters(config, path, getter, expected):
    assert getattr(config, getter)(path) == expected


def test_string_getter(config):
    assert config.get_str("optimizer.type").lower() == "adamw"


def test_count_and_kind(config):
    assert config.count("optimizer.params.betas") == 2
    assert config.kind("optimizer.params.betas") is JsonKind.ARRAY
    assert config.kind("zero_optimization") is JsonKind.OBJECT
    assert config.kind("optimizer.params.betas[0]") is JsonKind.NUMBER
    assert config.kind("bf16.enabled") is JsonKind.BOOL


def test_getitem_returns_python_values(config):
    assert config["zero_optimization.stage"] == 2
    assert config["optimizer.params.betas"] == [0.9, 0.95]
    assert config["zero_optimization"]["stage"] == 2


def test_defaults_are_filled_in(config):
    # fp16 was not given: the normalised tree has DeepSpeed's default block.
    assert config["fp16.enabled"] is False
    assert "fp16.enabled" in config
    assert "no_such_block.key" not in config


def test_get_with_default(config):
    assert config.get("no.such.key", 17) == 17
    assert config.get("zero_optimization.stage", 17) == 2


def test_to_dict_round_trips(config):
    tree = config.to_dict()
    assert tree["train_batch_size"] == 32
    assert tree["train_micro_batch_size_per_gpu"] == 4
    assert json.loads(config.to_json(pretty=True)) == tree
    assert json.loads(config.to_json("optimizer.params")) == tree["optimizer"]["params"]


@pytest.mark.parametrize(
    "path, exc, code, fragment",
    [
        ("nope", dsabi.NotFoundError, Status.NOT_FOUND, '"nope"'),
        ("optimizer.params.betas[5]", dsabi.NotFoundError, Status.NOT_FOUND, "index 5"),
        ("optimizer.type", dsabi.TypeMismatchError, Status.TYPE, '"optimizer.type"'),
        ("optimizer.params.lr", dsabi.TypeMismatchError, Status.TYPE, "0.0003"),
        ("optimizer..type", dsabi.InvalidArgumentError, Status.INVALID_ARG, "position 10"),
    ],
)
def test_getter_errors_name_the_path(config, path, exc, code, fragment):
    with pytest.raises(exc) as info:
        config.get_int(path)
    assert info.value.code == code
    assert "ds_config_get_i64" in info.value.message
    assert fragment in info.value.message


def test_missing_key_is_a_key_error(config):
    with pytest.raises(KeyError):
        config["optimizer.params.no_such_param"]


@pytest.mark.parametrize(
    "text, exc, code, fragment",
    [
        ('{"train_batch_size": 8,\n  "fp16": {"enabled": tru}}', dsabi.ConfigParseError, Status.CONFIG_PARSE, "line 2"),
        (
            '{"train_batch_size": 8, "zero_optimization": {"stage": 7}}',
            dsabi.ConfigValueError,
            Status.CONFIG_VALUE,
            "zero_optimization.stage",
        ),
        (
            '{"train_batch_size": 8, "zero_optimization": {"stage": 1, "bogus_key": 1}}',
            dsabi.UnknownConfigKeyError,
            Status.CONFIG_UNKNOWN_KEY,
            "zero_optimization.bogus_key",
        ),
        (
            '{"train_batch_size": 32, "train_micro_batch_size_per_gpu": 3, "gradient_accumulation_steps": 2}',
            dsabi.ConfigBatchError,
            Status.CONFIG_BATCH,
            "train_batch_size=32",
        ),
    ],
)
def test_invalid_configs(text, exc, code, fragment):
    with pytest.raises(exc) as info:
        dsabi.Config.parse(text, world_size=4)
    assert info.value.code == code
    assert isinstance(info.value, dsabi.ConfigError)
    assert fragment in info.value.message


def test_hjson_comments_and_trailing_commas():
    text = """
    // DeepSpeed reads configs with hjson
    {
        "train_micro_batch_size_per_gpu": 2,  # per GPU
        "gradient_accumulation_steps": 3,
    }
    """
    with dsabi.Config.parse(text, world_size=2) as cfg:
        assert cfg.get_int("train_batch_size") == 12


def test_unknown_top_level_key_is_a_warning_or_strict_error():
    loose = dict(BASE_CONFIG, my_custom_key=1)
    with dsabi.Config.parse(loose, world_size=4) as cfg:
        (diag,) = [d for d in cfg.diagnostics if d.path == "my_custom_key"]
        assert (diag.severity, diag.kind) == ("warning", "unknown_key")
    with pytest.raises(dsabi.UnknownConfigKeyError):
        dsabi.Config.parse(loose, world_size=4, strict=True)


def test_auto_values_follow_accept_auto():
    text = {"train_batch_size": 32, "train_micro_batch_size_per_gpu": "auto"}
    with dsabi.Config.parse(text, world_size=4) as cfg:
        assert cfg.get_int("train_micro_batch_size_per_gpu") == 8
        assert any(d.kind == "auto" for d in cfg.diagnostics)
    with pytest.raises(dsabi.ConfigValueError) as info:
        dsabi.Config.parse(text, world_size=4, accept_auto=False)
    assert "accept_auto" in info.value.message


def test_load_file(tmp_path):
    path = tmp_path / "ds_config.json"
    path.write_text(json.dumps(BASE_CONFIG))
    with dsabi.Config.load(path, world_size=8) as cfg:
        assert cfg.get_int("train_micro_batch_size_per_gpu") == 2


def test_load_missing_file_is_an_io_error(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(dsabi.DsIOError) as info:
        dsabi.Config.load(missing)
    assert info.value.code == Status.IO
    assert str(missing) in info.value.message


def test_world_size_from_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "8")
    with dsabi.Config.parse(BASE_CONFIG) as cfg:
        assert cfg.world_size == 8
        assert cfg.world_size_source is WorldSizeSource.WORLD_SIZE_ENV
        assert cfg.get_int("train_micro_batch_size_per_gpu") == 2


def test_context_manager_closes():
    with dsabi.Config.parse(BASE_CONFIG, world_size=4) as cfg:
        assert not cfg.closed
    assert cfg.closed
    with pytest.raises(dsabi.InvalidHandleError) as info:
        cfg.get_int("train_batch_size")
    assert info.value.code == Status.INVALID_HANDLE


def test_close_is_idempotent():
    cfg = dsabi.Config.parse(BASE_CONFIG, world_size=4)
    cfg.close()
    cfg.close()
    assert repr(cfg) == "<dsabi.Config (closed)>"


def test_close_on_exception_inside_with():
    with pytest.raises(RuntimeError):
        with dsabi.Config.parse(BASE_CONFIG, world_size=4) as cfg:
            raise RuntimeError("user code failed")
    assert cfg.closed

"""One error hierarchy, and `main()` turns every error into one line (in-process CLI tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ldmz.codec import errors
from ldmz.codec.cli import main


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err.strip()


def test_every_error_is_an_ldmz_error_and_a_builtin() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        if issubclass(cls, Warning):
            continue
        assert issubclass(cls, errors.LdmzError), name
        assert any(b.__module__ == "builtins" and b is not Exception for b in cls.__mro__), name
    assert issubclass(errors.ParamError, ValueError)
    from ldmz.codec.audio_io import AudioError
    from ldmz.codec.models import ModelError
    from ldmz.codec.train.finetune import FinetuneError
    from ldmz.codec.vocoders import VocoderError

    assert (AudioError, ModelError, VocoderError, FinetuneError) == (
        errors.AudioError, errors.ModelError, errors.VocoderError, errors.TrainError)


def test_parameter_checks_raise_param_error() -> None:
    import numpy as np

    from ldmz.codec.dsp.quant import allocate_bits
    from ldmz.codec.metrics import CompareParams, compare

    with pytest.raises(errors.ParamError, match="bits must be 1..8, got 9"):
        allocate_bits(np.zeros((1, 2, 3, 4), np.float32), 9)
    x = np.zeros((1, 1600), np.float32)
    with pytest.raises(errors.ParamError, match="unknown metric"):
        compare(x, 16000, x, 16000, CompareParams(), names=("nope",))


def test_demo_bad_bits_and_missing_file(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:  # argparse's own usage error
        main(["demo", "--bits", "9", "--out", str(tmp_path)])
    assert e.value.code == 2 and "Traceback" not in capsys.readouterr().err
    assert main(["demo", str(tmp_path / "nope.flac"), "--out", str(tmp_path)]) == 1
    assert _one_line(capsys) == f"ldmz demo: {tmp_path / 'nope.flac'}: no such file"


@pytest.mark.parametrize(("text", "needle"), [
    ('{"steps": 3,', "not valid JSON (Expecting property name"),
    ('{"stepz": 3}', "unknown config keys ['stepz']; known keys: "),
    ('{"steps": "many"}', "key 'steps' must be int, got 'many'"),
    ("[1, 2]", "a config must be a JSON object"),
])
@pytest.mark.parametrize("finetune", [False, True])
def test_train_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      text: str, needle: str, finetune: bool) -> None:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(text)
    extra = ["--finetune-decoder", "ldmz-small"] if finetune else []
    assert main(["train", "--config", str(cfg), *extra]) == 1
    line = _one_line(capsys)
    assert line.startswith(f"ldmz train: {cfg}: ") and needle in line, line


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", "x.csv"]) == 2
    assert "go with --finetune-decoder" in _one_line(capsys)


def test_missing_file_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encode", str(tmp_path / "nope.wav")]) == 1
    assert str(tmp_path / "nope.wav") in _one_line(capsys)


def test_ldmz_debug_prints_the_traceback_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"stepz": 3}')
    assert main(["train", "--config", str(cfg)]) == 1
    line = _one_line(capsys)
    monkeypatch.setenv("LDMZ_DEBUG", "1")
    assert main(["train", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "ConfigError" in err
    assert err.rstrip().splitlines()[-1] == line


def test_a_bug_is_one_line_that_says_so(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from ldmz.codec.cli import info

    def broken(args: object) -> int:
        raise KeyError("oops")

    monkeypatch.setattr(info, "run", broken)
    assert main(["info", "x.ldmz"]) == 70
    line = _one_line(capsys)
    assert line.startswith("ldmz info: internal error (KeyError: 'oops')")
    assert "LDMZ_DEBUG=1" in line


def test_unhashable_hub_weights_warn(tiny_audioldm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import diffusers
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    from ldmz.codec.models import registry

    real = diffusers.AutoencoderKL.from_pretrained

    def cached(repo: str, **kw: object) -> object:
        return real(tiny_audioldm / "vae")

    def not_cached(*a: object, **kw: object) -> str:
        raise LocalEntryNotFoundError("no snapshot")

    monkeypatch.setattr(diffusers.AutoencoderKL, "from_pretrained", cached)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_cached)
    with pytest.warns(errors.WeightsHashWarning, match="records no weights hash|record no"):
        m = registry._load_hub(registry.REGISTRY["cvssp/audioldm2"], "cpu", True)
    assert m.info.weights_sha256 == ""

    def broken(*a: object, **kw: object) -> str:
        raise RuntimeError("a bug, not a cache miss")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        registry._load_hub(registry.REGISTRY["cvssp/audioldm2"], "cpu", True)


def test_config_loader_keeps_good_values(tmp_path: Path) -> None:
    from ldmz.codec.train.trainer import TrainConfig

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"steps": 7, "lr": 1, "device": "cpu"}))
    c = TrainConfig.load(str(cfg))
    assert (c.steps, c.lr, c.device) == (7, 1, "cpu")

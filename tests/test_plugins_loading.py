"""Plug-in loading: load_vocoder/load_model route unknown names to installed entry points."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from ldmz.codec.cli import main
from ldmz.codec.params import DecodeParams, EncodeParams

DIST = "ldmz-loading-plugin"
PKG = "ldmz_loading_plugin_x"
CONST = 0.25  # every sample the demo vocoder makes: decoded audio is exactly CONST * gain
SR = 22050  # the tiny PatchVAE's mel rate, so nothing is resampled

VOC_PY = f'''"""Demo vocoder plug-ins: a factory (model, device) -> Vocoder, and one that fails."""
import numpy as np

from ldmz.codec.vocoders import UNIVERSAL_MEL, Vocoder

CALLS = []  # (model, device) of every factory call
MADE = []  # what the factory returned
SHAPES = []  # the log-mel shapes the vocoder was given


class ConstVocoder(Vocoder):
    """Every output sample is {CONST}; windows cross-fade to the same constant."""

    def __call__(self, log_mel):
        SHAPES.append(log_mel.shape)
        n = log_mel.shape[-2] * self.mel.hop_length
        return np.full((*log_mel.shape[:-2], n), {CONST}, np.float32)


def const(model, device):
    CALLS.append((model, device))
    mel = model.mel if model is not None else UNIVERSAL_MEL
    MADE.append(ConstVocoder("demo-const", mel, device=str(device), context=4, fade=4))
    return MADE[-1]


def fails(model, device):
    raise RuntimeError("boom: the demo vocoder factory failed")
'''


def _model_py(folder: Path, broken: Path, fails: Path) -> str:
    return f'''"""Demo model plug-ins: (device) -> a model folder, or a LoadedModel."""
from pathlib import Path

from ldmz.codec.models import load_folder

FOLDER = {str(folder)!r}  # its default vocoder: demo-const
BROKEN_VOC = {str(broken)!r}  # demo-broken
FAILS_VOC = {str(fails)!r}  # demo-fails
CALLS = []  # the device of every call
MADE = []


def folder(device):
    CALLS.append(device)
    return FOLDER


def loaded(device):
    CALLS.append(device)
    MADE.append(load_folder(Path(FOLDER), device, "demo-loaded"))
    return MADE[-1]


def broken_vocoder(device):
    return BROKEN_VOC


def fails_vocoder(device):
    return FAILS_VOC


def fails(device):
    raise ValueError("boom: the demo model factory failed")
'''


def _model_copy(src: Path, dst: Path, vocoder: str) -> Path:
    shutil.copytree(src, dst)
    meta = json.loads((dst / "ldmz.json").read_text())
    (dst / "ldmz.json").write_text(json.dumps({**meta, "vocoder": vocoder}))
    return dst


@pytest.fixture()
def site(tmp_path: Path, tiny_patchvae: Path, dist_writer) -> Path:  # noqa: ANN001
    """A site dir with a hand-made dist: good and broken vocoder and model plug-ins."""
    folder = _model_copy(tiny_patchvae, tmp_path / "demo-model", "demo-const")
    broken = _model_copy(tiny_patchvae, tmp_path / "broken-voc-model", "demo-broken")
    fails = _model_copy(tiny_patchvae, tmp_path / "fails-voc-model", "demo-fails")
    return dist_writer(tmp_path / "site", DIST, "1.0", PKG, {
        "__init__.py": '"""Demo plug-ins."""\n',
        "voc.py": VOC_PY,
        "model.py": _model_py(folder, broken, fails),
        "broken.py": "raise RuntimeError('boom: demo plug-in is broken')\n",
    }, "[ldmz.vocoders]\n"
       f"demo-const = {PKG}.voc:const\n"
       f"demo-fails = {PKG}.voc:fails\n"
       f"demo-broken = {PKG}.broken:factory\n"
       "\n[ldmz.models]\n"
       f"demo-folder = {PKG}.model:folder\n"
       f"demo-loaded = {PKG}.model:loaded\n"
       f"demo-broken-voc = {PKG}.model:broken_vocoder\n"
       f"demo-fails-voc = {PKG}.model:fails_vocoder\n"
       f"demo-model-fails = {PKG}.model:fails\n"
       f"demo-model-broken = {PKG}.broken:factory\n")


@pytest.fixture()
def installed(site: Path, monkeypatch: pytest.MonkeyPatch, fresh_models: None) -> Iterator[Path]:
    """The demo dist on sys.path, with load_model's cache empty before and after."""
    monkeypatch.syspath_prepend(str(site))
    yield site
    for m in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
        del sys.modules[m]


def _module(name: str) -> ModuleType:
    return sys.modules[f"{PKG}.{name}"]


def _wav(path: Path, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    sf.write(path, x, SR)
    return x


def _run(argv: list[str]) -> int:
    """``main(argv)``'s exit code, also when argparse exits."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code or 0)


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_load_vocoder_calls_the_factory(installed: Path) -> None:
    from ldmz.codec.vocoders import UNIVERSAL_MEL, load_vocoder

    model = SimpleNamespace(mel=UNIVERSAL_MEL)  # the factory gets the object itself
    voc = load_vocoder("demo-const", model, "cuda:7")  # and the device verbatim
    mod = _module("voc")
    assert mod.CALLS == [(model, "cuda:7")]
    assert voc is mod.MADE[-1] and voc.name == "demo-const" and voc.mel == UNIVERSAL_MEL


def test_decode_with_plugin_vocoder(installed: Path, tiny_patchvae: Path) -> None:
    from ldmz.codec.api import decode, decode_stream, encode

    x = np.sin(np.arange(int(1.5 * SR)) * 0.05).astype(np.float32) * 0.3
    f = encode(x, SR, EncodeParams(model=str(tiny_patchvae)))
    dp = DecodeParams(vocoder="demo-const", model=str(tiny_patchvae))
    assert decode_stream(f, dp).vocoder == "demo-const"
    y, sr = decode(f, dp)
    mod = _module("voc")
    model, device = mod.CALLS[-1]
    assert device == model.device == "cpu" and model.info.id == str(tiny_patchvae.resolve())
    assert {s[-1] for s in mod.SHAPES} == {model.mel.n_mels}  # the model's mel frames
    assert sr == SR and y.shape == (1, len(x))
    np.testing.assert_allclose(y, np.broadcast_to(CONST * np.asarray(f.header.source.gain)[:, None],
                                                  y.shape), rtol=1e-5)


def test_model_plugin_returning_a_folder(installed: Path, tiny_patchvae: Path) -> None:
    from ldmz.codec.models import load_model

    m = load_model("demo-folder", "cpu")
    mod = _module("model")
    assert mod.CALLS == ["cpu"]
    assert m.info.id == "demo-folder" and m.folder == Path(mod.FOLDER)
    assert type(m.autoencoder).__name__ == "PatchVAEAdapter"
    assert m.vocoder == "demo-const"  # the folder's ldmz.json
    assert m.info.weights_sha256 == load_model(str(tiny_patchvae), "cpu").info.weights_sha256


def test_model_plugin_returning_a_loaded_model(installed: Path) -> None:
    from ldmz.codec.models import load_model

    m = load_model("demo-loaded", "auto")
    mod = _module("model")
    assert mod.CALLS == ["cpu"]  # "auto" is resolved before the factory is called
    assert m is mod.MADE[-1] and m.info.id == "demo-loaded"


def test_cli_round_trip_through_plugins(installed: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`ldmz encode --model <plug-in>`, then `ldmz decode` with that model's plug-in vocoder."""
    from ldmz.formats import LdmzFile

    x = _wav(tmp_path / "in.wav")
    z, out = tmp_path / "in.ldmz", tmp_path / "out.wav"
    assert _run(["encode", str(tmp_path / "in.wav"), "--model", "demo-folder", "-q",
                 "-o", str(z)]) == 0, capsys.readouterr().err
    h = LdmzFile.load(z).header
    assert h.model.id == "demo-folder" and h.vocoder == "demo-const"
    assert _run(["decode", str(z), "-q", "-o", str(out)]) == 0, capsys.readouterr().err
    y, sr = sf.read(out, dtype="float32", always_2d=True)
    assert sr == SR and y.shape == (len(x), 1)
    np.testing.assert_allclose(y[:, 0], CONST * h.source.gain[0], atol=1 / 2**15)  # 16-bit
    assert _module("voc").CALLS, "the plug-in vocoder was not used"


def test_cli_decode_vocoder_option_takes_a_plugin(installed: Path, tmp_path: Path,
                                                  tiny_patchvae: Path) -> None:
    x = _wav(tmp_path / "in.wav")
    z, out = tmp_path / "in.ldmz", tmp_path / "out.wav"
    assert _run(["encode", str(tmp_path / "in.wav"), "--model", str(tiny_patchvae), "-q",
                 "-o", str(z)]) == 0
    assert _run(["decode", str(z), "--vocoder", "demo-const", "-q", "-o", str(out),
                 "--model", str(tiny_patchvae)]) == 0
    y, sr = sf.read(out, dtype="float32")
    assert sr == SR and len(y) == len(x)
    np.testing.assert_allclose(y, y[len(y) // 2], atol=1 / 2**15)


def test_encode_records_a_plugin_vocoder(installed: Path, tiny_patchvae: Path) -> None:
    from ldmz.codec.api import encode

    x = np.zeros(SR, np.float32)
    f = encode(x, SR, EncodeParams(model=str(tiny_patchvae), vocoder="demo-const"))
    assert f.header.vocoder == "demo-const"


@pytest.mark.parametrize("name", ["demo-broken", "demo-fails"])
def test_broken_vocoder_plugin_is_one_line(installed: Path, tmp_path: Path, name: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A plug-in that fails on import or in its factory: one line on stderr, exit 1."""
    from ldmz.codec.vocoders import load_vocoder

    with pytest.raises(Exception, match="boom"):
        load_vocoder(name, None)
    _wav(tmp_path / "in.wav")
    z = tmp_path / "in.ldmz"  # the model's default vocoder, recorded in the file, is `name`
    assert _run(["encode", str(tmp_path / "in.wav"), "--model", f"{name}-voc", "-q",
                 "-o", str(z)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert _run(["decode", str(z), "-q", "-o", str(tmp_path / "out.wav")]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "boom" in line and not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("name", ["demo-model-broken", "demo-model-fails"])
def test_broken_model_plugin_is_one_line(installed: Path, tmp_path: Path, name: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _wav(tmp_path / "in.wav")
    assert _run(["encode", str(tmp_path / "in.wav"), "--model", name, "-q",
                 "-o", str(tmp_path / "in.ldmz")]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "boom" in line and not (tmp_path / "in.ldmz").exists()


def test_broken_plugin_error_names_the_plugin(installed: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from ldmz.codec.models import ModelError, load_model
    from ldmz.codec.vocoders import VocoderError, load_vocoder

    with pytest.raises(VocoderError, match="demo-fails"):
        load_vocoder("demo-fails", None)
    with pytest.raises(ModelError, match="demo-model-broken"):
        load_model("demo-model-broken")
    _wav(tmp_path / "in.wav")
    assert _run(["encode", str(tmp_path / "in.wav"), "--model", "demo-model-fails", "-q"]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "demo-model-fails" in line and "report this" not in line


def test_broken_plugin_subprocess(site: Path, tmp_path: Path) -> None:
    """The real `python -m ldmz` process: exit 1 and one line, no traceback."""
    _wav(tmp_path / "in.wav")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    r = subprocess.run([sys.executable, "-m", "ldmz", "encode", str(tmp_path / "in.wav"),
                        "--model", "demo-model-broken", "-q"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    assert "boom" in _one_line_error(r.stderr)

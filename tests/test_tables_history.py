"""New entropy tables never orphan old files: a model folder keeps earlier tables by hash."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ldmz.codec.cli import main
from ldmz.formats import LdmzFile
from ldmz.formats.entropy import CONTEXTS, freqs_from_counts, tables_bytes

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
# tests/data/golden_v2_small.ldmz: 2 s (chirp + noise) encoded by ldmz-small at its default
# quality 4 with the first shipped tables (d0b7ca50..., ldmz-entropy-1), before the tables were
# refitted; the SHA-256 of its decoded latents (float32, little-endian, (1, 8, 44, 20)).
SMALL_TABLES = "d0b7ca50945f1af8"
SMALL_LATENTS = "46874909da53e7f477d00ff588e463e7a1fc3d9066ea909df234c72151f485ef"


def _fit_script():  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location("fit_entropy_tables",
                                                  ROOT / "scripts" / "fit_entropy_tables.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write_tables(folder: Path, scale: float, fmt: str = "ldmz-entropy-2") -> None:
    k = 24
    sym = np.abs(np.arange(2 * k + 1) - k)
    steps = np.array([2.0, 1.0, 0.5], np.float32)[:, None, None] * scale
    tensors = {"mean": np.zeros((8, 20), np.float32),
               "step": np.broadcast_to(steps, (3, 8, 20)).copy()}
    for q in range(3):
        counts = np.broadcast_to(np.exp(-sym * 0.5 * (q + 1)) * 1e4, (8, 20, CONTEXTS, 2 * k + 1))
        tensors[f"freq.{q}"] = freqs_from_counts(counts).astype(np.int32)
    path = folder / "entropy" / "tables.safetensors.zst"
    path.parent.mkdir(exist_ok=True)
    _fit_script().keep_earlier(path)
    path.write_bytes(tables_bytes(tensors, {"format": fmt, "default": "1"}))


def _latents(path: Path, model: str) -> str:
    from ldmz.codec.api import use_model_tables
    from ldmz.codec.models import load_model

    f = LdmzFile.load(path)
    use_model_tables(f, load_model(model, "cpu"))
    z = np.concatenate([f.read_chunk(i) for i in range(len(f.header.chunks))], axis=2)
    return hashlib.sha256(np.ascontiguousarray(z, "<f4").tobytes()).hexdigest()


def test_old_small_file_still_decodes() -> None:
    """The file made with ldmz-small's first tables decodes to the same latents today."""
    f = LdmzFile.load(DATA / "golden_v2_small.ldmz")
    assert f.header.quantizer.tables_sha256 == SMALL_TABLES and f.header.quantizer.quality == 4
    assert _latents(DATA / "golden_v2_small.ldmz", "ldmz-small") == SMALL_LATENTS


def test_refitted_tables_keep_the_old_files_decodable(tiny_patchvae: Path, tmp_path: Path,
                                                      fresh_models: None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from ldmz.codec.models.registry import folder_tables

    model = tmp_path / "m"
    shutil.copytree(tiny_patchvae, model)
    _write_tables(model, 1.0)
    t = np.arange(22050 * 2) / 22050
    wav = tmp_path / "a.wav"
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 22050)
    old = tmp_path / "old.ldmz"
    assert main(["encode", str(wav), "--model", str(model), "-o", str(old), "-q"]) == 0
    before = _latents(old, str(model))

    _write_tables(model, 1.7)  # refit: the earlier tables move aside under their hash
    from ldmz.codec.models import load_model

    load_model.cache_clear()
    kept = sorted((model / "entropy").glob("tables-*.safetensors.zst"))
    assert len(kept) == 1 and kept[0].name == f"tables-{_prefix(old)}.safetensors.zst"
    new = tmp_path / "new.ldmz"
    assert main(["encode", str(wav), "--model", str(model), "-o", str(new), "-q"]) == 0
    assert _prefix(new) != _prefix(old)
    assert _latents(old, str(model)) == before  # old file: the kept tables, same latents
    assert folder_tables(model, _prefix(new)) is not None
    out = tmp_path / "old.wav"
    assert main(["decode", str(old), "--model", str(model), "-o", str(out), "-q", "--vocoder",
                 "griffinlim", "--griffinlim-iters", "1"]) == 0

    kept[0].unlink()  # without them: one line, exit 1
    load_model.cache_clear()
    capsys.readouterr()
    assert main(["decode", str(old), "--model", str(model), "-o", str(out), "-q", "-f"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and _prefix(old) in err


def _prefix(path: Path) -> str:
    return LdmzFile.load(path).header.quantizer.tables_sha256


def _speechlike(seconds: float = 4.0, sr: int = 22050) -> np.ndarray:
    """Voiced syllables: a harmonic source (f0 gliding 110-190 Hz) under three formants, with
    pauses and a little noise."""
    rng = np.random.default_rng(5)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 150 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    formants = 700 + 300 * np.sin(2 * np.pi * 1.3 * t), 1200 + 500 * np.cos(2 * np.pi * 0.9 * t)
    x = np.zeros_like(t)
    for h in range(1, 40):
        fh = h * f0
        gain = (sum(np.exp(-((fh - f) / 150) ** 2) for f in formants)
                + np.exp(-((fh - 2600) / 300) ** 2))
        x += gain * np.sin(h * phase) / h ** 0.5
    env = np.clip(np.sin(2 * np.pi * 2.2 * t), 0, None) ** 0.5  # syllables and pauses
    y = 0.2 * x * env / np.abs(x).max() + 0.002 * rng.standard_normal(t.size)
    return y.astype(np.float32)[None]


def test_new_default_is_not_worse_than_the_old_on_a_test_signal() -> None:
    """ldmz-small's default (refitted tables) against the first tables' rate-distortion curve
    (its quality 3 and 4, the old default): at the new default's rate, the decoded log-mel is no
    further from the exact one than the old curve's (the chord through old 3 and 4, extended: the
    curve is convex, so the chord is the stricter bar), and the rate is within 5 % of the old
    default's."""
    from ldmz.codec.api import decode_mel, encode
    from ldmz.codec.audio_io import resample
    from ldmz.codec.dsp.frontend import log_mel_np, normalize
    from ldmz.codec.models import load_model
    from ldmz.codec.models.registry import folder_tables
    from ldmz.codec.params import EncodeParams

    base = EncodeParams(model="ldmz-small")
    model = load_model(base.model, base.device, base.offline or None)  # encode's own
    assert model.tables is not None and not model.tables.sha256.startswith(SMALL_TABLES)
    old = folder_tables(model.folder, SMALL_TABLES)
    assert old is not None
    audio = _speechlike()
    ref = log_mel_np(normalize(resample(audio[0], 22050, model.mel.sample_rate))[0], model.mel)

    def run(quality: int = -1) -> tuple[float, float]:
        f = encode(audio, 22050, EncodeParams(model="ldmz-small", quality=quality))
        mel = decode_mel(f, 0, model)
        n = min(len(mel), len(ref))
        return len(f.to_bytes()) * 8 / 4.0 / 1000, float(np.abs(mel[:n] - ref[:n]).mean())

    new_kbps, new_l1 = run()
    tables = model.tables
    model.tables = old
    try:
        (k3, l3), (k4, l4) = run(3), run(4)
    finally:
        model.tables = tables
    chord = l4 + (l3 - l4) * (k4 - new_kbps) / (k4 - k3)
    assert new_l1 <= chord and new_kbps <= 1.05 * k4, (new_kbps, new_l1, (k3, l3), (k4, l4))

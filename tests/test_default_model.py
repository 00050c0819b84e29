"""Each coding's default model: the entropy coding encodes with ldmz-small-rd, ``--bits`` with
ldmz-small; an explicit model always wins, and files of either still decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ldmz.codec.models import EMBEDDED_DIR, available_models
from ldmz.codec.params import AFFINE_MODEL, DEFAULT_MODEL, EncodeParams
from ldmz.formats import LdmzFile

needs_models = pytest.mark.skipif(
    not all((EMBEDDED_DIR / m / "config.json").exists() for m in (DEFAULT_MODEL, AFFINE_MODEL)),
    reason="the embedded models are not installed")


def test_the_coding_picks_the_model() -> None:
    assert DEFAULT_MODEL != AFFINE_MODEL
    assert EncodeParams().model_name() == DEFAULT_MODEL
    assert EncodeParams(coding="rans").model_name() == DEFAULT_MODEL
    assert EncodeParams(coding="affine").model_name() == AFFINE_MODEL
    assert EncodeParams(model="x", coding="affine").model_name() == "x"
    assert EncodeParams(model="x").model_name() == "x"


@needs_models
def test_both_defaults_are_embedded_and_the_entropy_one_has_tables() -> None:
    from ldmz.codec.models.registry import folder_tables
    assert {DEFAULT_MODEL, AFFINE_MODEL} <= set(available_models())
    from ldmz.codec.models import load_model

    model = load_model(DEFAULT_MODEL, "cpu", True)
    assert model.tables is not None
    assert folder_tables(EMBEDDED_DIR / DEFAULT_MODEL, model.tables.sha256[:16]) is not None


@needs_models
def test_cli_defaults_name_the_model_in_the_file(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from ldmz.codec.cli import main

    t = np.arange(22050) / 22050
    wav = tmp_path / "a.wav"
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 22050)
    assert main(["encode", str(wav), "-o", str(tmp_path / "e.ldmz")]) == 0
    assert main(["encode", str(wav), "--bits", "2", "-o", str(tmp_path / "b.ldmz")]) == 0
    assert main(["encode", str(wav), "--bits", "2", "--model", DEFAULT_MODEL,
                 "-o", str(tmp_path / "x.ldmz")]) == 0
    named = {n: LdmzFile.load(tmp_path / f"{n}.ldmz").header.model.id for n in "ebx"}
    assert named == {"e": DEFAULT_MODEL, "b": AFFINE_MODEL, "x": DEFAULT_MODEL}
    for n in "eb":  # each decodes with the model it names, no flags
        assert main(["decode", str(tmp_path / f"{n}.ldmz"), "--vocoder", "griffinlim",
                     "-o", str(tmp_path / f"{n}.wav")]) == 0
        assert sf.info(tmp_path / f"{n}.wav").duration == pytest.approx(1.0, abs=0.01)
    capsys.readouterr()


@needs_models
def test_the_rd_default_beats_ldmz_small_default_on_a_test_signal() -> None:
    """ldmz-small-rd at its default quality against ldmz-small at its own: at least 5 % fewer
    bits and a decoded log-mel no further from the exact one (measured on this signal: 6.32 vs
    7.25 kbps, L1 0.164 vs 0.170)."""
    import importlib.util

    from ldmz.codec.api import decode_mel, encode
    from ldmz.codec.audio_io import resample
    from ldmz.codec.dsp.frontend import log_mel_np, normalize
    from ldmz.codec.models import load_model

    spec = importlib.util.spec_from_file_location(
        "tables_history", Path(__file__).with_name("test_tables_history.py"))
    assert spec is not None and spec.loader is not None
    th = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(th)
    audio = th._speechlike()  # 4 s of a synthetic voice with pauses

    def run(name: str) -> tuple[float, float]:
        model = load_model(name, "cpu", True)
        ref = log_mel_np(normalize(resample(audio[0], 22050, model.mel.sample_rate))[0],
                         model.mel)
        f = encode(audio, 22050, EncodeParams(model=name))
        mel = decode_mel(f, 0, model)
        n = min(len(mel), len(ref))
        return len(f.to_bytes()) * 8 / 4.0 / 1000, float(np.abs(mel[:n] - ref[:n]).mean())

    (rd_kbps, rd_l1), (small_kbps, small_l1) = run(DEFAULT_MODEL), run(AFFINE_MODEL)
    assert rd_kbps <= 0.95 * small_kbps and rd_l1 <= small_l1, (rd_kbps, rd_l1, small_kbps,
                                                                  small_l1)

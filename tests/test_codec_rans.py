"""Entropy coding in the codec: model-folder tables, --quality/--kbps, defaults, info, refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ldmz.codec.cli import main
from ldmz.formats import LdmzFile, load_tables
from ldmz.formats.entropy import CONTEXTS, freqs_from_counts, tables_bytes


def _with_tables(src: Path, dst: Path, steps: tuple[float, ...] = (2.0, 1.0, 0.5, 0.25),
                 default: int = 1) -> Path:
    """A copy of the tiny model folder with Laplace-shaped tables (8 channels, 20 bins)."""
    shutil.copytree(src, dst)
    k = 24
    sym = np.abs(np.arange(2 * k + 1) - k)
    tensors = {"mean": np.zeros((8, 20), np.float32),
               "step": np.repeat(np.array(steps, np.float32)[:, None], 8, axis=1)}
    for q, s in enumerate(steps):
        counts = np.broadcast_to(np.exp(-sym * s) * 1e4, (8, 20, CONTEXTS, 2 * k + 1))
        tensors[f"freq.{q}"] = freqs_from_counts(counts).astype(np.int32)
    (dst / "entropy").mkdir()
    (dst / "entropy" / "tables.safetensors.zst").write_bytes(
        tables_bytes(tensors, {"format": "ldmz-entropy-1", "default": str(default)}))
    return dst


@pytest.fixture(scope="module")
def ec_model(tiny_patchvae: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _with_tables(tiny_patchvae, tmp_path_factory.mktemp("ec") / "tiny-ec")


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = np.arange(int(22050 * 3.0)) / 22050
    x = (0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2)
    x[len(x) // 2:] *= 0.01  # a quiet second half
    p = tmp_path_factory.mktemp("wav") / "a.wav"
    sf.write(p, x.astype(np.float32), 22050)
    return p


def test_default_writes_format_2_when_the_model_has_tables(ec_model: Path, wav: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "a.ldmz"
    assert main(["encode", str(wav), "--model", str(ec_model), "-o", str(out), "-q"]) == 0
    f = LdmzFile.load(out)
    assert f.entropy_coded and f.header.quantizer.quality == 1
    assert out.read_bytes()[4] == 2
    back = tmp_path / "a.wav"
    assert main(["decode", str(out), "-o", str(back), "-q", "--vocoder", "griffinlim",
                 "--griffinlim-iters", "2", "--model", str(ec_model)]) == 0
    assert sf.info(back).frames == sf.info(wav).frames


def test_bits_still_writes_format_1(ec_model: Path, wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.ldmz"
    assert main(["encode", str(wav), "--model", str(ec_model), "--bits", "3", "-o", str(out),
                 "-q"]) == 0
    f = LdmzFile.load(out)
    assert not f.entropy_coded and out.read_bytes()[4] == 1


def test_quality_orders_the_rate(ec_model: Path, wav: Path, tmp_path: Path) -> None:
    sizes = []
    for q in range(4):
        out = tmp_path / f"q{q}.ldmz"
        assert main(["encode", str(wav), "--model", str(ec_model), "--quality", str(q), "-o",
                     str(out), "-q"]) == 0
        assert LdmzFile.load(out).header.quantizer.quality == q
        sizes.append(out.stat().st_size)
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_kbps_picks_the_best_quality_that_fits(ec_model: Path, wav: Path,
                                               tmp_path: Path) -> None:
    rates = []
    for q in range(4):
        out = tmp_path / f"r{q}.ldmz"
        main(["encode", str(wav), "--model", str(ec_model), "--quality", str(q), "-o", str(out),
              "-q"])
        rates.append(out.stat().st_size * 8 / 3.0 / 1000)
    target = (rates[1] + rates[2]) / 2
    out = tmp_path / "k.ldmz"
    assert main(["encode", str(wav), "--model", str(ec_model), "--kbps", f"{target:.4f}", "-o",
                 str(out), "-q"]) == 0
    assert LdmzFile.load(out).header.quantizer.quality == 1
    assert out.stat().st_size * 8 / 3.0 / 1000 <= target


def test_quality_needs_tables(tiny_patchvae: Path, wav: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "n.ldmz"
    assert main(["encode", str(wav), "--model", str(tiny_patchvae), "-o", str(out), "-q"]) == 0
    assert not LdmzFile.load(out).entropy_coded  # no tables: the affine coding, as before
    rc = main(["encode", str(wav), "--model", str(tiny_patchvae), "--quality", "1", "-o",
               str(tmp_path / "m.ldmz"), "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "no entropy tables" in err and len(err.strip().splitlines()) == 1


def test_decoding_with_a_model_without_tables_is_one_line(
        ec_model: Path, tiny_patchvae: Path, wav: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d.ldmz"
    main(["encode", str(wav), "--model", str(ec_model), "-o", str(out), "-q"])
    capsys.readouterr()
    rc = main(["decode", str(out), "--model", str(tiny_patchvae), "-o", str(tmp_path / "d.wav"),
               "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "tables" in err


def test_damaged_entropy_coded_file_is_one_line(ec_model: Path, wav: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.ldmz"
    main(["encode", str(wav), "--model", str(ec_model), "-o", str(out), "-q"])
    data = bytearray(out.read_bytes())
    data[-3] ^= 0x10
    bad = tmp_path / "bad.ldmz"
    bad.write_bytes(bytes(data))
    capsys.readouterr()
    for argv in (["info", str(bad)], ["decode", str(bad), "-o", str(tmp_path / "y.wav"), "-q",
                                      "--model", str(ec_model)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "checksum" in err


def test_info_shows_coding_and_bits_per_value(ec_model: Path, wav: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "i.ldmz"
    main(["encode", str(wav), "--model", str(ec_model), "--quality", "2", "-o", str(out), "-q"])
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "rans, quality 2" in text and "bits/value" in text
    assert main(["info", "--json", str(out)]) == 0
    s = json.loads(capsys.readouterr().out)
    f = LdmzFile.load(out)
    assert s["coding"] == "rans" and s["quality"] == 2
    assert s["bits_per_value"] == [round(b, 4) for b in f.chunk_bits_per_value()]
    assert s["header_bytes"] == out.stat().st_size - f.header.data_size < 200


def test_torch_dataset_finds_the_model_tables(ec_model: Path, wav: Path, tmp_path: Path) -> None:
    from ldmz.codec.dataset import LatentTorchDataset
    from ldmz.codec.errors import ModelError
    from ldmz.codec.models.registry import TABLES_FILE, find_tables
    from ldmz.formats import load_tables

    out = tmp_path / "ds"
    out.mkdir()
    assert main(["encode", str(wav), "--model", str(ec_model), "-o", str(out / "a.ldmz"),
                 "-q"]) == 0
    f = LdmzFile.load(out / "a.ldmz")
    assert f.entropy_coded
    with pytest.raises(ModelError, match="not embedded"):  # a file names no folder to read
        LatentTorchDataset(out, crop=8)
    ds = LatentTorchDataset(out, crop=8, tables=load_tables(ec_model / TABLES_FILE))
    assert tuple(ds[0].shape) == (8, 8, 20)
    assert find_tables("ldmz-small") is not None and find_tables(str(ec_model)) is None


def test_near_mono_stereo_default_is_not_larger_than_bits_2(
        ec_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A stereo voice (the channels differ by a level and a little noise): coded channel by
    channel (format 2.0) the default was larger than --bits 2; with inter-channel prediction
    (format 2.1) it is not, and it decodes to the same codes."""
    from ldmz.formats.entropy import encode_codes

    rng = np.random.default_rng(5)
    t = np.arange(int(22050 * 4.0)) / 22050
    x = sum(np.sin(2 * np.pi * f0 * t + rng.uniform(0, 6)) / k
            for k, f0 in enumerate((180, 360, 540, 900, 1700, 3100), 1))
    x = 0.2 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.normal(size=t.size)
    y = np.stack([x, 0.8 * x + 0.002 * rng.normal(size=t.size)], axis=1)
    src = tmp_path / "st.wav"
    sf.write(src, y.astype(np.float32), 22050)
    a, b = tmp_path / "a.ldmz", tmp_path / "b.ldmz"
    assert main(["encode", str(src), "--model", str(ec_model), "-o", str(a), "-q"]) == 0
    assert main(["encode", str(src), "--model", str(ec_model), "--bits", "2", "-o", str(b),
                 "-q"]) == 0
    f = LdmzFile.load(a)
    assert a.read_bytes()[4:6] == b"\x02\x01" and all(c.joint for c in f.header.chunks)
    f.use_tables(load_tables(ec_model / "entropy" / "tables.safetensors.zst"))
    codes = [f.chunk_codes(i) for i in range(len(f.header.chunks))]
    alone = sum(len(encode_codes(c, f.tables, f.header.quantizer.quality)) for c in codes)
    header = a.stat().st_size - f.header.data_size
    assert header + alone > b.stat().st_size  # format 2.0's size: larger than --bits 2
    assert a.stat().st_size <= b.stat().st_size
    capsys.readouterr()
    assert main(["info", str(a)]) == 0
    n = len(f.header.chunks)
    assert f"channel 1 from 0 in {n} of {n} chunks" in capsys.readouterr().out

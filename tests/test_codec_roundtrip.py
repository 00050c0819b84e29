"""Round trips through encode/decode with tiny seeded models: shapes, header, vocoders, rates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ldmz.codec import DecodeParams, EncodeParams
from ldmz.codec.api import decode, decode_stream, encode, load
from ldmz.codec.models import AUDIOLDM_MEL, load_model, weights_hash
from ldmz.formats import LdmzFile, MelParams

FAST_GL = 4  # Griffin-Lim iterations: shapes, not quality, are under test here


def _reload(f: LdmzFile) -> LdmzFile:
    return LdmzFile.from_bytes(f.to_bytes())


def test_header_and_hifigan_roundtrip(tiny_audioldm: Path, signals) -> None:  # noqa: ANN001
    x = signals.chirp(1.0, 16000)
    params = EncodeParams(model=str(tiny_audioldm), bits=4, chunk_seconds=0.5)
    f = _reload(encode(x, 16000, params, tags={"title": "chirp ♪"}))
    h = f.header
    assert h.model.id == str(tiny_audioldm.resolve())
    assert h.model.weights_sha256 == weights_hash(tiny_audioldm / "vae")
    assert h.model.scaling_factor == 0.5
    assert h.mel == AUDIOLDM_MEL
    assert (h.source.sample_rate, h.source.channels, h.source.samples) == (16000, 1, 16000)
    peak = float(np.abs(x - x.mean()).max())
    assert h.source.gain == pytest.approx((peak / 0.5,), rel=1e-4)
    lat = h.latent
    assert (lat.channels, lat.freq_bins, lat.time_downsample) == (8, 16, 4)
    assert (lat.frames, lat.mel_frames, lat.frames_per_chunk) == (25, 100, 12)
    assert len(h.chunks) == 3
    assert h.quantizer.mode == "affine" and len(h.quantizer.bits) == 8
    assert max(h.quantizer.bits) == 4
    assert h.tags == {"title": "chirp ♪"}
    assert h.vocoder == "hifigan" and h.writer.startswith("ldmz ")
    y, sr = decode(f, DecodeParams(model=str(tiny_audioldm)), vocoder="hifigan")
    assert (y.shape, sr, y.dtype) == ((1, 16000), 16000, np.float32)
    assert np.isfinite(y).all() and np.abs(y).max() > 1e-3


@pytest.mark.parametrize(("channels", "sr"), [(2, 44100), (3, 22050)])
def test_channels_rates_and_sr_param(tiny_audioldm: Path, signals, channels: int,  # noqa: ANN001
                                     sr: int) -> None:
    x = signals.chirp(0.5, sr)
    audio = np.stack([x, np.zeros_like(x), -0.5 * x][:channels])
    f = encode(audio, sr, EncodeParams(model=str(tiny_audioldm), chunk_seconds=0.3))
    assert (f.header.source.channels, f.header.source.samples) == (channels, len(x))
    assert f.header.source.gain[1] == 0.0
    y, out_sr = decode(f, DecodeParams(vocoder="griffinlim", griffinlim_iters=FAST_GL,
                                       model=str(tiny_audioldm)))
    assert (y.shape, out_sr) == ((channels, len(x)), sr)
    assert not y[1].any()  # the silent channel stays silent: channels are coded independently
    y8, sr8 = decode(f, DecodeParams(vocoder="griffinlim", griffinlim_iters=FAST_GL,
                                     model=str(tiny_audioldm), sr=8000))
    assert (y8.shape, sr8) == ((channels, round(len(x) * 8000 / sr)), 8000)


def test_universal_through_the_mel_adapter(tiny_audioldm: Path, signals) -> None:  # noqa: ANN001
    x = signals.chirp(0.3, 16000)
    f = encode(x, 16000, EncodeParams(model=str(tiny_audioldm)))
    st = decode_stream(f, DecodeParams(model=str(tiny_audioldm)), vocoder="universal")
    assert st.vocoder == "universal"
    y = np.concatenate(list(st))
    assert y.shape == (len(x), 1) and np.isfinite(y).all()


def test_patchvae_folder_and_its_default_vocoder(tiny_patchvae: Path, signals) -> None:  # noqa: ANN001
    x = signals.chirp(0.3, 22050)
    f = _reload(encode(x, 22050, EncodeParams(model=str(tiny_patchvae))))
    h = f.header
    assert h.mel == MelParams(sample_rate=22050, n_fft=1024, hop_length=256, win_length=1024,
                              n_mels=80, fmin=0.0, fmax=8000.0, log_floor=1e-5,
                              frontend="hifigan")
    assert (h.latent.channels, h.latent.freq_bins) == (8, 20)
    assert h.vocoder == "universal"  # from the folder's ldmz.json
    assert h.model.weights_sha256 == weights_hash(tiny_patchvae)
    y, sr = decode(f, DecodeParams(model=str(tiny_patchvae)))
    assert (y.shape, sr) == ((1, len(x)), 22050) and np.isfinite(y).all()


def test_vocoder_choice(tiny_audioldm: Path, signals) -> None:  # noqa: ANN001
    x = signals.chirp(0.3, 16000)
    f = encode(x, 16000, EncodeParams(model=str(tiny_audioldm), vocoder="griffinlim"))
    assert f.header.vocoder == "griffinlim"
    m = str(tiny_audioldm)
    assert decode_stream(f, DecodeParams(model=m)).vocoder == "griffinlim"  # the file's default
    assert decode_stream(f, DecodeParams(model=m, vocoder="hifigan")).vocoder == "hifigan"
    assert decode_stream(f, DecodeParams(model=m, vocoder="hifigan"), vocoder="griffinlim"
                         ).vocoder == "griffinlim"  # the keyword wins over params


def test_encode_feeds_the_vae_the_pinned_front_end(tiny_audioldm: Path, signals,  # noqa: ANN001
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import librosa

    model = load_model(str(tiny_audioldm), "cpu")
    seen = []
    real = type(model).encode
    monkeypatch.setattr(type(model), "encode", lambda self, m: seen.append(m.numpy().copy())
                        or real(self, m))
    x = 0.1 + signals.chirp(0.5, 16000)  # with a DC offset, which the normalization removes
    encode(x, 16000, EncodeParams(model=str(tiny_audioldm), device="cpu"))
    assert len(seen) == 1 and seen[0].shape == (1, 1, 52, 64)  # 8000 samples -> 13 latents
    # independent derivation: mean removed, peak 0.5, zero-padded to whole latents,
    # reflect padding (n_fft - hop) / 2, |STFT| with a hann window, slaney mel, log floor 1e-5
    w = x.astype(np.float64) - x.mean(dtype=np.float64)
    w = np.pad(0.5 * w / np.abs(w).max(), (0, 52 * 160 - len(w)))
    w = np.pad(w, (432, 432), mode="reflect")
    spec = np.abs(librosa.stft(w, n_fft=1024, hop_length=160, window="hann", center=False))
    basis = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=64, fmin=0, fmax=8000)
    expected = np.log(np.maximum(basis @ spec, 1e-5)).T
    assert np.abs(seen[0][0, 0] - expected).max() < 1e-4


def test_load_decodes_ldmz_files(tiny_audioldm: Path, signals, tmp_path: Path) -> None:  # noqa: ANN001
    x = signals.chirp(0.3, 16000)
    path = tmp_path / "x.ldmz"
    encode(x, 16000, EncodeParams(model=str(tiny_audioldm))).save(path)
    y, sr = load(path, sr=8000, model=str(tiny_audioldm))
    assert (y.shape, sr) == ((1, 2400), 8000)


def test_encode_file_reads_one_channel_at_a_time(tiny_audioldm: Path, signals,  # noqa: ANN001
                                                 tmp_path: Path) -> None:
    import soundfile as sf

    from ldmz.codec.api import encode_file
    from ldmz.codec.audio_io import read_audio

    x = signals.chirp(0.3, 16000)
    sf.write(tmp_path / "s.flac", np.stack([x, 0.5 * x[::-1]], axis=1), 16000)
    params = EncodeParams(model=str(tiny_audioldm))
    a = encode_file(tmp_path / "s.flac", params).latents()
    b = encode(*read_audio(tmp_path / "s.flac"), params).latents()
    np.testing.assert_array_equal(a, b)


def _cached(repo: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo, "vae/config.json"), str)


@pytest.mark.slow
@pytest.mark.skipif(not _cached("cvssp/audioldm2"), reason="cvssp/audioldm2 is not in the "
                    "Hugging Face cache (huggingface-cli download cvssp/audioldm2)")
def test_real_audioldm2_weights(signals) -> None:  # noqa: ANN001
    x = signals.chirp(2.0, 16000)
    f = encode(x, 16000, EncodeParams(model="cvssp/audioldm2", offline=True))
    assert f.header.model.scaling_factor == pytest.approx(0.4110932946205139)
    for vocoder in ("hifigan", "universal", "griffinlim"):
        y, sr = decode(f, DecodeParams(vocoder=vocoder, offline=True))
        assert (y.shape, sr) == ((1, len(x)), 16000) and np.isfinite(y).all()

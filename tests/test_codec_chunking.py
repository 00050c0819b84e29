"""Windowed encode/decode: chunked against one chunk, click-free joins, bounded memory."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from ldmz.codec import api
from ldmz.codec.api import decode_mel, decode_stream, encode, encode_latents, vocode
from ldmz.codec.dsp.chunking import fade_len, fade_weights, growing_spans, spans, windows
from ldmz.codec.models import load_model
from ldmz.codec.params import DecodeParams, EncodeParams
from ldmz.codec.vocoders import load_vocoder
from ldmz.formats import SourceInfo, pack_latents


def _assert_fades_sum_to_one(sp: list, total: int) -> None:
    """The cross-fade weights of spans ``sp`` (3 samples per frame) add up to 1 everywhere."""
    fade = fade_len(8, sp, unit=3)
    acc = np.zeros(total * 3)
    for a, s, e, b in sp:
        acc[a * 3:b * 3] += fade_weights(a * 3, s * 3, e * 3, b * 3, fade)
    np.testing.assert_allclose(acc, 1.0, atol=1e-6)


def test_windows_spans_and_fades_tile_exactly() -> None:
    assert windows(10, 4) == [(0, 3), (3, 7), (7, 10)]
    assert windows(0, 4) == [(0, 0)] and windows(3, 100) == [(0, 3)]
    for total, size, ctx in [(100, 17, 5), (100, 17, 3), (7, 2, 1), (500, 64, 40), (30, 100, 5)]:
        sp = spans(total, size, ctx)
        assert len({b - a for a, _, _, b in sp}) == 1  # one input shape for the model
        assert all(a <= s - min(ctx, s) and b >= e + min(ctx, total - e) for a, s, e, b in sp)
        _assert_fades_sum_to_one(sp, total)


def test_growing_spans_start_small_and_tile_exactly() -> None:
    assert [(s, e) for _, s, e, _ in growing_spans(1000, 256, 20, 32)][:4] == [
        (0, 32), (32, 96), (96, 224), (224, 418)]  # 32, 64, 128, then balanced <= 256
    assert growing_spans(60, 256, 20, 32) == spans(60, 256, 20)  # too short to split
    assert growing_spans(500, 64, 40, 0) == spans(500, 64, 40)  # off
    for total, size, first, ctx in [(1000, 256, 32, 20), (100, 17, 2, 5), (97, 256, 32, 30),
                                    (5000, 1024, 32, 40), (64, 256, 32, 8)]:
        sp = growing_spans(total, size, ctx, first)
        assert sp[0][1] == 0 and sp[-1][2] == total
        assert all(sp[i][2] == sp[i + 1][1] for i in range(len(sp) - 1))  # cores tile
        assert all(e - s >= min(first, total) and e - s <= size for _, s, e, _ in sp)
        assert all(a <= s - min(ctx, s) and b >= e + min(ctx, total - e) for a, s, e, b in sp)
        _assert_fades_sum_to_one(sp, total)


@pytest.mark.parametrize("which", ["tiny_patchvae", "tiny_audioldm"])
def test_chunked_encode_against_one_chunk(which: str, request: pytest.FixtureRequest,
                                          signals, record_property) -> None:  # noqa: ANN001
    model = load_model(str(request.getfixturevalue(which)), "cpu")
    sr = model.mel.sample_rate
    x = signals.chirp(4.0, sr)
    whole, g1, n1 = encode_latents(x, sr, model, window=10_000)
    parts, g2, n2 = encode_latents(x, sr, model, window=25)  # 4 windows
    assert (g1, n1) == (g2, n2) and whole.shape == parts.shape
    rel = float(np.abs(parts - whole).max() / np.abs(whole).max())
    mean = float(np.abs(parts - whole).mean() / np.abs(whole).mean())
    record_property(f"chunked_encode_rel_err_{which}", (rel, mean))
    print(f"\nchunked vs one-chunk encode, {which}: max |dz| / max |z| = {rel:.2e}, "
          f"mean |dz| / mean |z| = {mean:.2e}")
    if which == "tiny_patchvae":  # finite receptive field inside the context: exact
        assert rel < 1e-5
    else:  # GroupNorm statistics and mid-block attention span the whole window
        assert mean < 0.05 and rel < 0.15


def _mel_join_errors(model, z: np.ndarray, window: int) -> tuple[float, float, float]:  # noqa: ANN001
    """Mel error of windowed vs one-window decode near window joins and elsewhere (mean |d|),
    and the largest frame-to-frame jump the joins add."""
    mel = model.mel
    frames = z.shape[1]
    f = pack_latents(z[None], model=model.info, mel=mel,
                     source=SourceInfo(mel.sample_rate, 1, frames * 4 * mel.hop_length, (1.0,)),
                     bits="float16", frames_per_chunk=frames, time_downsample=4,
                     mel_frames=frames * 4)
    whole = decode_mel(f, 0, model, window=frames)
    parts = decode_mel(f, 0, model, window=window)
    err = np.abs(parts - whole).mean(axis=1)
    joins = [s * 4 for s, _ in windows(frames, window)[1:]]
    near = np.zeros(len(err), bool)
    for j in joins:
        near[max(0, j - 8):j + 8] = True
    jump = np.abs(np.diff(parts, axis=0)).mean(axis=1) - np.abs(np.diff(whole, axis=0)).mean(
        axis=1)
    return float(err[near].mean()), float(err[~near].mean()), float(jump[near[1:]].max())


@pytest.mark.parametrize("which", ["tiny_patchvae", "tiny_audioldm"])
@pytest.mark.parametrize("kind", ["sine", "noise burst"])
def test_click_free_join(which: str, kind: str, request: pytest.FixtureRequest,
                         signals, record_property) -> None:  # noqa: ANN001
    model = load_model(str(request.getfixturevalue(which)), "cpu")
    sr = model.mel.sample_rate
    if kind == "sine":
        x = signals.sine(6.0, sr, 330.0)
    else:  # silence, a 1 s noise burst across a window join, silence
        x = np.zeros(int(6.0 * sr), np.float32)
        x[int(1.7 * sr):int(2.7 * sr)] = np.random.default_rng(3).uniform(-0.8, 0.8, sr)
    z, _, _ = encode_latents(x, sr, model, window=10_000)
    near, away, jump = _mel_join_errors(model, z, window=50)  # 3 windows, joins at 2 s, 4 s
    record_property(f"join_{which}_{kind}", {"near": near, "away": away, "jump": jump})
    print(f"\njoin error {which}, {kind}: near joins {near:.2e}, elsewhere {away:.2e}, "
          f"added jump {jump:.2e} (log-mel, mean |d| per frame)")
    if which == "tiny_patchvae":  # receptive field inside the context: the same as one window
        assert near < 1e-4 and away < 1e-4 and jump < 1e-3
    else:  # global GroupNorm/attention: windows differ a little everywhere, joins stay smooth
        assert jump < 0.05  # log-mel; a click would be a jump of order 1
        assert near < 3 * away + 1e-3


def _tiny_ldmzvoc(folder: Path, monkeypatch: pytest.MonkeyPatch, gla_iters: int = 0) -> None:
    """A tiny seeded ldmzvoc in ``folder``, standing in for the shipped weights.

    ``gla_iters`` > 0: version 2's shape (magnitude prior and Griffin-Lim iterations).
    """
    import torch

    from ldmz.codec.models import ldmzvoc

    torch.manual_seed(0)
    net = ldmzvoc.build(ldmzvoc.LdmzVocConfig(dim=16, blocks=2, kernel=5,
                                              mag_prior=gla_iters > 0, gla_iters=gla_iters))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.2)
    ldmzvoc.save(net, folder)
    monkeypatch.setattr(ldmzvoc, "WEIGHTS_DIR", folder)


@pytest.mark.parametrize("name", ["hifigan", "ldmzvoc", "ldmzvoc-gla"])
def test_vocoder_windows_join_exactly(name: str, tiny_audioldm: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(str(tiny_audioldm), "cpu")
    if name.startswith("ldmzvoc"):
        _tiny_ldmzvoc(tmp_path / "ldmzvoc", monkeypatch, gla_iters=3 if "gla" in name else 0)
    voc = load_vocoder(name.split("-")[0], model)
    n_mels, hop = voc.mel.n_mels, voc.mel.hop_length
    m = np.random.default_rng(0).normal(-5, 2, (300, n_mels)).astype(np.float32)
    whole = voc(m)[: 300 * hop]
    monkeypatch.setattr(api, "VOCODER_WINDOW", 64)
    parts = vocode(m, voc)
    assert parts.shape == whole.shape
    assert np.abs(parts - whole).max() < 1e-5 * max(1.0, float(np.abs(whole).max()))


@pytest.mark.parametrize("gla_iters", [0, 3])
def test_ldmzvoc_decode_stream_joins(tiny_patchvae: Path, tmp_path: Path, signals,  # noqa: ANN001
                                     monkeypatch: pytest.MonkeyPatch, gla_iters: int) -> None:
    """A file decoded with ldmzvoc in small vocoder windows gives the samples of big ones."""
    _tiny_ldmzvoc(tmp_path / "ldmzvoc", monkeypatch, gla_iters)
    f = api.encode(signals.chirp(3.0, 22050)[None], 22050,
                   EncodeParams(model=str(tiny_patchvae), bits=8, device="cpu"))
    # a file names no paths: the folder model is passed, as `ldmz decode --model PATH` does
    dp = DecodeParams(vocoder="ldmzvoc", device="cpu", model=str(tiny_patchvae))
    whole = np.concatenate(list(api.decode_stream(f, dp)))
    st = api.decode_stream(f, dp, vocoder_window=40)
    assert st.vocoder == "ldmzvoc"
    got = np.concatenate(list(st))
    assert got.shape == whole.shape
    assert np.abs(got - whole).max() < 1e-4 * max(1.0, float(np.abs(whole).max()))


def _model_calls(monkeypatch: pytest.MonkeyPatch, model) -> list[int]:  # noqa: ANN001
    sizes: list[int] = []
    cls = type(model)
    enc, dec = cls.encode, cls.decode
    monkeypatch.setattr(cls, "encode", lambda self, m: sizes.append(m.shape[2]) or enc(self, m))
    monkeypatch.setattr(cls, "decode", lambda self, z: sizes.append(z.shape[2] * 4)
                        or dec(self, z))
    return sizes


def _peak_growth(run) -> tuple[float, float]:  # noqa: ANN001
    """Peak RSS and peak traced (numpy/Python) memory, in MB, while ``run()`` runs (Linux)."""
    import tracemalloc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    except OSError:
        pytest.skip("cannot reset the peak RSS here")
    before = int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0])
    tracemalloc.start()
    try:
        run()
        traced = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    hwm = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
    return (hwm - before) / 1024, traced


def test_memory_does_not_grow_with_duration(tiny_audioldm: Path, signals,  # noqa: ANN001
                                            monkeypatch: pytest.MonkeyPatch,
                                            record_property) -> None:  # noqa: ANN001
    from ldmz.codec.dsp import frontend

    model = load_model(str(tiny_audioldm), "cpu")
    sizes = _model_calls(monkeypatch, model)
    stft_in: list[int] = []
    real_log_mel = frontend.log_mel
    monkeypatch.setattr(frontend, "log_mel", lambda w, m, pad=True: stft_in.append(
        w.shape[-1]) or real_log_mel(w, m, pad))
    from ldmz.codec.vocoders import NetVocoder

    voc_in: list[int] = []
    real_voc = NetVocoder.__call__
    monkeypatch.setattr(NetVocoder, "__call__", lambda self, m: voc_in.append(m.shape[-2])
                        or real_voc(self, m))
    monkeypatch.setattr(api, "VOCODER_WINDOW", 200)  # so both durations fill whole windows
    monkeypatch.setattr(api, "model_window", lambda m: 50)  # decode windows of 2 s, as encode
    ep = EncodeParams(model=str(tiny_audioldm), device="cpu", chunk_seconds=2.0)
    dp = DecodeParams(sr=48000, device="cpu", model=str(tiny_audioldm))
    files, enc, dec, calls = {}, {}, {}, {}
    for sec in (4.0, 4, 12):  # whole 2 s windows: one model input shape; the first warms up
        x = signals.sine(sec, 16000)
        sizes.clear()
        enc[sec] = _peak_growth(lambda x=x, sec=sec: files.__setitem__(sec, encode(x, 16000, ep)))
        st = decode_stream(files[sec], dp)
        dec[sec] = _peak_growth(lambda st=st: [None for _ in st])
        calls[sec] = max(sizes)
    record_property("peak_growth_mb_rss_traced", {"enc": enc, "dec": dec})
    print(f"\npeak growth (MB, RSS / traced): encode 4 s {enc[4][0]:.1f} / {enc[4][1]:.2f}, "
          f"12 s {enc[12][0]:.1f} / {enc[12][1]:.2f}; streamed decode 4 s {dec[4][0]:.1f} / "
          f"{dec[4][1]:.2f}, 12 s {dec[12][0]:.1f} / {dec[12][1]:.2f}; largest model input "
          f"{calls[12]} mel frames, largest STFT input {max(stft_in)} samples, largest vocoder "
          f"input {max(voc_in)} frames")
    assert calls[4] == calls[12] == (50 + 2 * model.context) * 4  # windows, not durations
    assert max(stft_in) <= 511 * 160 + 1024  # the front-end runs in blocks of 512 frames
    # encode keeps the channel at the model rate, its mel and latents: about 0.1 MB/s here
    assert enc[12][1] - enc[4][1] < 8 * 0.15
    assert enc[12][0] - enc[4][0] < 8 * 1.0  # RSS is noisy: only gross growth shows here
    # a streamed decode holds nothing that grows with the duration (8 s more at 48 kHz would
    # be 1.5 MB of output alone)
    assert dec[12][1] - dec[4][1] < 0.3
    assert max(voc_in) == 200 + 2 * load_vocoder("hifigan", model).context
    assert dec[12][0] - dec[4][0] < 4.0  # RSS is noisier than the traced numbers


def test_decode_stream_vocoder_window_changes_latency_not_output(tiny_audioldm: Path,
                                                                 signals) -> None:  # noqa: ANN001
    """A small vocoder window (players) gives the same samples as the default one."""
    audio = signals.chirp(3.0, 16000)[None]
    f = api.encode(audio, 16000, EncodeParams(model=str(tiny_audioldm), bits=8))
    dp = DecodeParams(vocoder="hifigan", model=str(tiny_audioldm))
    whole = np.concatenate(list(api.decode_stream(f, dp)))
    small = api.decode_stream(f, dp, vocoder_window=40)
    blocks = list(small)
    assert len(blocks) > 3
    got = np.concatenate(blocks)
    assert got.shape == whole.shape
    assert np.abs(got - whole).max() < 1e-4 * max(1.0, float(np.abs(whole).max()))
    # growing first windows (players: first audio soon): the same samples, a small first block
    st = api.decode_stream(f, dp, vocoder_window=80, first_window=8)
    grown = list(st)
    voc = load_vocoder("hifigan", load_model(str(tiny_audioldm), "cpu"))
    assert len(grown[0]) <= 8 * voc.mel.hop_length < len(blocks[0]) < len(whole)
    got = np.concatenate(grown)
    assert got.shape == whole.shape
    assert np.abs(got - whole).max() < 1e-4 * max(1.0, float(np.abs(whole).max()))


def test_griffinlim_ignores_the_growing_first_window(signals) -> None:  # noqa: ANN001
    """Griffin-Lim's phase depends on its window: a player's growing start must not change it."""
    audio = 0.3 * signals.chirp(3.0, 22050)[None]
    f = api.encode(audio, 22050, EncodeParams(bits=4))  # the embedded model
    dp = DecodeParams(vocoder="griffinlim", griffinlim_iters=4)
    plain = np.concatenate(list(api.decode_stream(f, dp, vocoder_window=40)))
    grown = np.concatenate(list(api.decode_stream(f, dp, vocoder_window=40, first_window=8)))
    np.testing.assert_array_equal(grown, plain)


def test_growing_start_shortens_the_first_vae_call_too(tiny_patchvae: Path, signals,  # noqa: ANN001
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A player's growing start (first_window) also starts the VAE small where its windows are
    exact (PatchVAE): the first block needs one short VAE call; the samples stay the same."""
    _tiny_ldmzvoc(tmp_path / "ldmzvoc", monkeypatch)
    f = api.encode(signals.chirp(12.0, 22050)[None], 22050,
                   EncodeParams(model=str(tiny_patchvae), bits=8, device="cpu"))
    dp = DecodeParams(vocoder="ldmzvoc", device="cpu", model=str(tiny_patchvae))
    whole = np.concatenate(list(api.decode_stream(f, dp, vocoder_window=256)))
    model = load_model(str(tiny_patchvae), "cpu")
    sizes = _model_calls(monkeypatch, model)
    blocks = iter(api.decode_stream(f, dp, vocoder_window=256, first_window=16))
    first = next(blocks)
    assert len(sizes) == 1 and sizes[0] < api.model_window(model) * 4 / 2, sizes
    assert 0 < len(first) <= 16 * 256
    got = np.concatenate([first, *blocks])
    assert got.shape == whole.shape
    assert np.abs(got - whole).max() < 1e-4 * max(1.0, float(np.abs(whole).max()))


def _cli_peak_mb(args: list[str]) -> float:
    """Peak RSS (MB) of ``ldmz ARGS`` in a child process, read by the child itself (VmHWM is
    per process image: the rusage of a child also counts the forked copy of this suite)."""
    import os
    import subprocess
    import sys

    code = ("import sys\nfrom pathlib import Path\nfrom ldmz.codec.cli import main\n"
            "rc = main(sys.argv[1:])\n"
            "print(rc, Path('/proc/self/status').read_text().split('VmHWM:')[1].split()[0])\n")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    rc, kb = r.stdout.split()[-2:]
    assert r.returncode == 0 and rc == "0", r.stderr
    return int(kb) / 1024


def test_cli_decode_peak_memory_does_not_grow_with_duration(tiny_patchvae: Path, signals,  # noqa: ANN001
                                                             tmp_path: Path,
                                                             record_property) -> None:  # noqa: ANN001
    """`ldmz decode` of 200 s peaks within 20 MB of 20 s: the output is never held whole (200 s
    at 48 kHz, float: 38 MB). The first windows raise the peak by ~10 MB (allocator warm-up,
    measured: 297 -> 307 MB), then it stays flat; the in-process test above bounds the rest."""
    peaks = {}
    for sec in (20, 200):
        x = signals.sine(sec, 22050)
        f = encode(x, 22050, EncodeParams(model=str(tiny_patchvae), bits=4, device="cpu"))
        f.save(tmp_path / f"{sec}.ldmz")
        peaks[sec] = _cli_peak_mb(["decode", str(tmp_path / f"{sec}.ldmz"), "-o",
                                   str(tmp_path / f"{sec}.wav"), "-q", "--model",
                                   str(tiny_patchvae), "--vocoder", "griffinlim",
                                   "--griffinlim-iters", "1", "--sr", "48000"])
    record_property("cli_decode_peak_mb", peaks)
    print(f"\n`ldmz decode` peak RSS, tiny model, Griffin-Lim: 20 s {peaks[20]:.0f} MB, 200 s "
          f"{peaks[200]:.0f} MB")
    assert peaks[200] - peaks[20] < 20


def test_decode_trims_the_heap_before_each_vocoder_window(tiny_patchvae: Path, signals,  # noqa: ANN001
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The C heap's free pages go back to the OS before every vocoder call, so the freed
    memory of the VAE and of earlier windows does not sit under the vocoder's peak."""
    f = api.encode(signals.chirp(6.0, 22050)[None], 22050,
                   EncodeParams(model=str(tiny_patchvae), bits=8, device="cpu"))
    events: list[str] = []
    real_trim = api.trim_heap
    monkeypatch.setattr(api, "trim_heap", lambda: events.append("trim"))
    voc = load_vocoder("griffinlim", load_model(str(tiny_patchvae), "cpu"), n_iter=1)
    monkeypatch.setattr(type(voc), "__call__",
                        lambda self, m: (events.append("voc"),
                                         np.zeros((len(m), m.shape[1] * 256), np.float32))[1])
    dp = DecodeParams(vocoder="griffinlim", griffinlim_iters=1, device="cpu",
                      model=str(tiny_patchvae))
    list(api.decode_stream(f, dp, vocoder_window=64))
    assert events.count("voc") > 3 and events == ["trim", "voc"] * events.count("voc")
    real_trim()  # a no-op, or glibc's malloc_trim: never fails

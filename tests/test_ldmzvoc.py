"""ldmzvoc: framing, receptive field, weights on disk, load_vocoder, and its training run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ldmz.codec.dsp.frontend import log_mel_np
from ldmz.codec.models import ldmzvoc
from ldmz.codec.vocoders import UNIVERSAL_MEL, NetVocoder, load_vocoder

TINY = ldmzvoc.LdmzVocConfig(dim=16, blocks=2, kernel=5)
TINY_GLA = ldmzvoc.LdmzVocConfig(dim=16, blocks=2, kernel=5, mag_prior=True, gla_iters=3)


def _tiny_net(seed: int = 0, cfg: ldmzvoc.LdmzVocConfig = TINY):  # noqa: ANN202 - nn.Module
    torch.manual_seed(seed)
    net = ldmzvoc.build(cfg).eval()
    with torch.no_grad():  # large random weights: every path carries signal
        for p in net.parameters():
            p.normal_(0, 0.2)
    return net


def test_head_inverts_the_front_end_stft() -> None:
    """The exact STFT of a signal, as head outputs, overlap-adds back to the signal."""
    from ldmz.codec.train.vocoder import stft

    x = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, 40 * 256).astype(np.float32))
    s = stft(x[None], 1024, 256)
    assert s.shape[1] == 40  # one frame per hop, as the mel front-end
    y = _tiny_net().synthesize(torch.log(s.abs()), s.real, s.imag)
    assert y.shape == (1, 40 * 256)
    assert float((y[0] - x).abs().max()) < 1e-4


@pytest.mark.parametrize("cfg", [TINY, TINY_GLA], ids=["v1", "gla"])
def test_receptive_field_is_an_upper_bound(cfg: ldmzvoc.LdmzVocConfig) -> None:
    net = _tiny_net(cfg=cfg).double()
    x = torch.randn(1, 60, 80, dtype=torch.float64)
    y = x.clone()
    y[0, 30] += 1.0
    with torch.no_grad():
        d = (net(x) - net(y)).abs()[0]
    idx = torch.nonzero(d > 1e-12).flatten()
    reach = max(30 - idx.min().item() / 256, (idx.max().item() + 1) / 256 - 31)
    rf = ldmzvoc.receptive_field(cfg)
    assert reach <= rf
    assert reach > rf - 3  # and not a loose bound


def test_prior_starts_from_the_mel_pseudo_inverse() -> None:
    """Version 2 untrained: the head gives the pinv magnitude of the mel and zero phase."""
    from ldmz.codec.vocoders import mel_to_linear

    net = ldmzvoc.build(TINY_GLA).eval()
    mel = np.random.default_rng(1).normal(-4, 1.5, (12, 80)).astype(np.float32)
    with torch.no_grad():
        logmag, r, i = net.spectrum(torch.from_numpy(mel)[None])
    want = np.log(np.maximum(mel_to_linear(mel, UNIVERSAL_MEL).T, 1e-5))
    assert np.abs(logmag[0].numpy() - want).max() < 1e-4
    assert torch.all(r == 1) and torch.all(i == 0)


def test_griffin_lim_iterations_make_the_spectrum_consistent() -> None:
    """Plain Griffin-Lim (momentum 0) never increases the inconsistency; 0 iterations = identity."""
    from ldmz.codec.train.vocoder import stft

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(0, 0.1, 40 * 256).astype(np.float32))
    mag = stft(x[None], 1024, 256).abs()
    spec = torch.polar(mag, torch.from_numpy(rng.uniform(0, 6.3, mag.shape).astype(np.float32)))
    window = torch.hann_window(1024)
    assert torch.equal(ldmzvoc.griffin_lim(spec, mag, window, 256, 0, 0.0), spec)

    def inconsistency(s: torch.Tensor) -> float:
        frames = torch.fft.irfft(s, n=1024) * window
        y = ldmzvoc.overlap_add(frames, window, 256, crop=False)
        again = torch.fft.rfft(y.unfold(-1, 1024, 256) * window)
        return float((again.abs() - mag).abs().mean())

    errs = [inconsistency(ldmzvoc.griffin_lim(spec, mag, window, 256, k, 0.0)) for k in range(6)]
    assert all(b <= a + 1e-6 for a, b in zip(errs, errs[1:], strict=False))
    assert errs[-1] < 0.7 * errs[0]


def test_version1_config_loads_as_version1(tmp_path: Path) -> None:
    """A config.json without the version-2 keys (the weights shipped before) keeps its shape."""
    ldmzvoc.save(_tiny_net(), tmp_path / "v")
    raw = json.loads((tmp_path / "v" / "config.json").read_text())
    for key in ("mag_prior", "gla_iters", "gla_momentum"):
        raw.pop(key)
    (tmp_path / "v" / "config.json").write_text(json.dumps(raw))
    back = ldmzvoc.load(tmp_path / "v")
    assert back.config.gla_iters == 0 and not back.config.mag_prior


def test_save_load_float16(tmp_path: Path) -> None:
    net = _tiny_net()
    ldmzvoc.save(net, tmp_path / "v", meta={"step": 3})
    from safetensors.torch import load_file

    assert {v.dtype for v in load_file(str(tmp_path / "v" / "model.safetensors")).values()} == {
        torch.float16}
    back = ldmzvoc.load(tmp_path / "v")
    assert back.config == TINY
    m = torch.randn(1, 20, 80)
    with torch.no_grad():
        a, b = net(m), back(m)
    assert float((a - b).abs().max()) < 5e-3 * float(a.abs().max())


@pytest.fixture
def tiny_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny seeded ldmzvoc folder standing in for the shipped weights."""
    folder = tmp_path / "ldmzvoc"
    ldmzvoc.save(_tiny_net(), folder)
    monkeypatch.setattr(ldmzvoc, "WEIGHTS_DIR", folder)
    return folder


def test_load_vocoder_ldmzvoc(tiny_shipped: Path) -> None:
    voc = load_vocoder("ldmzvoc")
    assert isinstance(voc, NetVocoder) and voc.name == "ldmzvoc" and voc.mel == UNIVERSAL_MEL
    assert voc.context == ldmzvoc.receptive_field(TINY) + voc.fade // 2
    from ldmz.codec.vocoders import LDMZVOC_WINDOW

    assert voc.window == LDMZVOC_WINDOW  # decode_stream's calls are bounded (peak memory)
    y = voc(np.random.default_rng(0).normal(-5, 2, (30, 80)).astype(np.float32))
    assert y.shape == (30 * 256,) and y.dtype == np.float32 and np.isfinite(y).all()


def test_missing_weights_name_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ldmz.codec.vocoders import VocoderError

    monkeypatch.setattr(ldmzvoc, "WEIGHTS_DIR", tmp_path / "nowhere")
    with pytest.raises(VocoderError, match="ldmzvoc weights are missing"):
        load_vocoder("ldmzvoc")


# --- training --------------------------------------------------------------------------------
def _write_shards(folder: Path, clips: int, seed: int) -> None:
    """Clips of decaying harmonic tones; the 'teacher' is the audio itself."""
    rng = np.random.default_rng(seed)
    frames, hop = 64, 256
    t = np.arange(frames * hop) / 22050
    audio = []
    for _ in range(clips):
        f0 = rng.uniform(100, 400)
        x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 6))
        audio.append((0.3 * x * np.exp(-t * rng.uniform(0, 2))).astype(np.float32))
    audio = np.stack(audio)
    mel = np.stack([log_mel_np(a, UNIVERSAL_MEL)[:frames] for a in audio])
    folder.mkdir(parents=True)
    np.savez(folder / "000.npz", audio=audio.astype(np.float16), teacher=audio.astype(np.float16),
             mel=mel.astype(np.float16), codec_mel=(mel + 0.1).astype(np.float16),
             codec_bits=np.array([2] * clips), cat=np.array(["speech"] * clips))


@pytest.fixture
def vocoder_data(tmp_path: Path) -> Path:
    _write_shards(tmp_path / "data" / "train", 6, 0)
    _write_shards(tmp_path / "data" / "val", 2, 1)
    return tmp_path / "data"


def _config(tmp_path: Path, data: Path, **kw: object) -> Path:
    raw = {"task": "vocoder", "data": str(data), "out": str(tmp_path / "run"), "steps": 40,
           "batch": 4, "frames": 24, "lr": 3e-3, "warmup": 5, "log_every": 10,
           "val_every": 20, "ckpt_every": 10, "model": {"dim": 32, "blocks": 2}, **kw}
    path = tmp_path / "vocoder.json"
    path.write_text(json.dumps(raw))
    return path


def _log(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "train.log").read_text().splitlines()]


def test_train_loss_falls_and_exports(tmp_path: Path, vocoder_data: Path) -> None:
    from ldmz.codec.cli import main

    cfg = _config(tmp_path, vocoder_data)
    assert main(["train", "--config", str(cfg)]) == 0
    recs = _log(tmp_path / "run")
    assert recs[-1]["step"] == 40
    assert recs[-1]["loss"] < 0.8 * recs[0]["loss"]
    assert "val_mel_l1" in recs[-1] and "val_codec_mel_l1" in recs[-1]
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0
    net = ldmzvoc.load(tmp_path / "run" / "model")
    assert net.config.dim == 32


def test_train_resumes_exactly(tmp_path: Path, vocoder_data: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped after its step-10 checkpoint and rerun, a run ends with the weights of one that
    was never stopped."""
    from ldmz.codec.train import vocoder as tv

    cfg = tv.VocoderTrainConfig.load(_config(tmp_path, vocoder_data, steps=20, val_every=1000))
    whole = tv.train(tv.VocoderTrainConfig.load(None, **{**cfg.__dict__,
                                                         "out": str(tmp_path / "a")}))
    real = tv.VocoderTask.loss

    def stop_at_10(self, step, rng):  # noqa: ANN001, ANN202
        if step == 10:
            raise KeyboardInterrupt
        return real(self, step, rng)

    stopped = tv.VocoderTrainConfig.load(None, **{**cfg.__dict__, "out": str(tmp_path / "b")})
    monkeypatch.setattr(tv.VocoderTask, "loss", stop_at_10)
    with pytest.raises(KeyboardInterrupt):
        tv.train(stopped)
    monkeypatch.setattr(tv.VocoderTask, "loss", real)
    lines: list[str] = []
    tv.train(stopped, log=lines.append)
    assert lines[0] == "resumed at step 10"
    assert [r["step"] for r in _log(tmp_path / "b")] == [10, 20]
    a = ldmzvoc.load(whole / "model").state_dict()
    b = ldmzvoc.load(tmp_path / "b" / "model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_refuses_unknown_keys(tmp_path: Path, vocoder_data: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    from ldmz.codec.cli import main

    assert main(["train", "--config", str(_config(tmp_path, vocoder_data, lr_typo=1))]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lr_typo" in err[0] and "vocoder.json" in err[0]


def test_init_from_takes_the_folders_shape(tmp_path: Path, vocoder_data: Path) -> None:
    """init_from without "model" trains the folder's shape (version 2 included); a "model" that
    differs from the folder is refused instead of loading weights into the wrong network."""
    from ldmz.codec.errors import ConfigError
    from ldmz.codec.train.vocoder import VocoderTask, VocoderTrainConfig

    ldmzvoc.save(_tiny_net(cfg=TINY_GLA), tmp_path / "start")
    raw = json.loads(_config(tmp_path, vocoder_data).read_text())
    raw.pop("model")
    cfg = VocoderTrainConfig(**{**raw, "init_from": str(tmp_path / "start")})
    task = VocoderTask(cfg)
    assert task.net_cfg == TINY_GLA and task.model.config.gla_iters == 3
    with pytest.raises(ConfigError, match="remove \"model\""):
        VocoderTask(VocoderTrainConfig(**{**raw, "init_from": str(tmp_path / "start"),
                                          "model": {"dim": 16, "blocks": 2}}))


def test_adversarial_stage_trains_and_resumes(tmp_path: Path, vocoder_data: Path) -> None:
    """Stage 2 (discriminators, feature matching) runs, logs its losses and resumes its state."""
    from ldmz.codec.train.vocoder import VocoderTrainConfig, train

    cfg = VocoderTrainConfig.load(_config(tmp_path, vocoder_data, steps=4, ckpt_every=2,
                                          log_every=2, val_every=1000, adversarial=True,
                                          adv_start=2, disc_width=4, frames=16))
    run = train(cfg)
    recs = _log(run)
    assert "adv" not in recs[0] and {"adv", "fm", "disc"} <= set(recs[1])
    assert all(np.isfinite(r["loss"]) for r in recs)
    state = torch.load(run / "last.pt", weights_only=True)
    assert "disc" in state["extra"] and "opt_d" in state["extra"]
    lines: list[str] = []
    train(VocoderTrainConfig.load(None, **{**cfg.__dict__, "steps": 6}), log=lines.append)
    assert lines[0] == "resumed at step 4" and _log(run)[-1]["step"] == 6

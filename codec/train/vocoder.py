"""Training of ldmzvoc (``ldmz train --config configs/vocoder.json``) on prepared clip shards.

The shards come from ``scripts/vocoder_data.py``: real audio, its exact log-mel, the universal
HiFi-GAN's waveform from that mel (the teacher, computed once) and, for some clips, the mel that
ldmz-small decodes from its own 2- or 3-bit file. Losses:

- real audio: multi-resolution STFT log-magnitude L1 and log-mel L1 of the output;
- at the head's own framing, the log-magnitude L1 and anti-wrapped phase losses (group delay and
  instantaneous frequency; APNet's losses) weighted by the target's magnitude. The target is the
  teacher where the shards have one (a deterministic function of the mel, so its absolute phase
  is learnable too: an instantaneous-phase term and a waveform L1 join), else the real audio;
- consistency: the STFT of the output against the head's spectrum, so that its phases form a
  spectrum that overlap-add does not cancel.

With probability ``codec_fraction`` a clip's input is its codec-decoded mel while every target
stays that of the exact audio, so the vocoder learns to cover the codec's errors.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldmz.codec.dsp.frontend import log_mel
from ldmz.codec.errors import ConfigError, TrainError
from ldmz.codec.models.ldmzvoc import LdmzVocConfig, build, save
from ldmz.codec.train.loop import LoopConfig, run
from ldmz.codec.vocoders import UNIVERSAL_MEL


@dataclass(frozen=True)
class VocoderTrainConfig:
    """A vocoder training run; read from JSON (``"task": "vocoder"``), unknown keys refused."""

    task: str = "vocoder"
    data: str = "runs/vocoder/data"  # holds train/*.npz and val/*.npz
    out: str = "runs/vocoder/run"
    steps: int = 20000
    batch: int = 8
    frames: int = 48
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup: int = 200
    seed: int = 0
    threads: int = 1
    time_budget_s: float = 0.0
    log_every: int = 50
    val_every: int = 500
    ckpt_every: int = 250
    reload_every: int = 1000  # re-read the shard folder (more shards may have been written)
    gain_aug_db: float = 18.0
    codec_fraction: float = 0.3
    w_mrstft: float = 1.0
    w_mel: float = 1.0
    w_wave: float = 1.0
    w_head_mag: float = 1.0
    w_phase: float = 1.0
    w_consistency: float = 0.5
    model: dict = field(default_factory=dict)
    init_from: str = ""  # an ldmzvoc folder to start from
    device: str = "cpu"  # cpu, cuda or auto
    # stage 2 (a GPU): multi-period + multi-resolution discriminators, feature matching
    adversarial: bool = False
    adv_start: int = 0  # steps of regression before the discriminators join
    w_adv: float = 1.0
    w_fm: float = 2.0
    disc_lr: float = 2e-4
    disc_width: int = 32

    @classmethod
    def load(cls, path: str | Path | None, **overrides: object) -> VocoderTrainConfig:
        """Read a JSON config (unknown keys, wrong types refused); non-None overrides win."""
        from ldmz.codec.params import from_json

        return from_json(cls, str(path) if path else None, **overrides)


def load_shards(folder: Path) -> dict:
    """Concatenate every ``*.npz`` shard of ``folder`` (float16 arrays stay float16)."""
    parts: dict[str, list] = {}
    for p in sorted(folder.glob("[0-9]*.npz")):
        with np.load(p) as z:
            for k in z.files:
                parts.setdefault(k, []).append(z[k])
    if not parts:
        raise TrainError(f"{folder}: no shards; run scripts/vocoder_data.py first")
    return {k: np.concatenate(v) for k, v in parts.items()}


def _wrap(x: torch.Tensor) -> torch.Tensor:
    """Anti-wrapping: |x - 2 pi round(x / 2 pi)|."""
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


def stft(y: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(B, S) -> complex (B, frames, bins), framed like the mel front-end (reflect pad)."""
    p = (n_fft - hop) // 2
    x = torch.nn.functional.pad(y[:, None], (p, p), mode="reflect")[:, 0]
    s = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, device=y.device),
                   center=False, return_complex=True)
    return s.transpose(1, 2)


RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


def mrstft_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT: log-magnitude L1 plus spectral convergence, averaged."""
    total = y.new_zeros(())
    for n_fft, hop in RESOLUTIONS:
        a, b = stft(y, n_fft, hop).abs(), stft(x, n_fft, hop).abs()
        total = total + (torch.log(a + 1e-5) - torch.log(b + 1e-5)).abs().mean()
        total = total + torch.linalg.norm(a - b) / (torch.linalg.norm(b) + 1e-7)
    return total / len(RESOLUTIONS)


class VocoderTask:
    """The ldmzvoc training task for :func:`ldmz.codec.train.loop.run`."""

    def __init__(self, cfg: VocoderTrainConfig) -> None:
        self.cfg = cfg
        self.device = cfg.device if cfg.device != "auto" else (
            "cuda" if torch.cuda.is_available() else "cpu")
        self.net_cfg = LdmzVocConfig.from_dict(cfg.model, "the training config's \"model\"")
        start = None
        if cfg.init_from:  # its shape is the run's; a "model" that says otherwise is refused
            from ldmz.codec.models.ldmzvoc import load

            start = load(cfg.init_from)
            if cfg.model and start.config != self.net_cfg:
                raise ConfigError(f"init_from {cfg.init_from} is {start.config}, not the "
                                  f"\"model\" {self.net_cfg}; remove \"model\" or make it match")
            self.net_cfg = start.config
        if self.net_cfg.hop != UNIVERSAL_MEL.hop_length or self.net_cfg.n_mels != \
                UNIVERSAL_MEL.n_mels:
            raise ConfigError("ldmzvoc trains on the codec's 80-mel with hop 256; fix \"model\"")
        self.model = build(self.net_cfg)
        if start is not None:
            self.model.load_state_dict(start.state_dict())
        self.model.to(self.device)
        self.disc: Any = None
        self.opt_d: Any = None
        if cfg.adversarial:
            from ldmz.codec.train.discriminators import Discriminators

            self.disc = Discriminators(cfg.disc_width).to(self.device)
            self.opt_d = torch.optim.AdamW(self.disc.parameters(), cfg.disc_lr,
                                           betas=(0.8, 0.99))
        self.data_dir = Path(cfg.data)
        self.train = load_shards(self.data_dir / "train")
        val = load_shards(self.data_dir / "val")
        self.val = {k: val[k] for k in ("audio", "mel", "codec_mel", "codec_bits", "cat")}
        self.teacher = "teacher" in self.train
        if not self.teacher and cfg.w_wave:
            raise TrainError(f"{self.data_dir / 'train'}: the shards have no teacher; set "
                             f"w_wave to 0 (head and phase losses then use the real audio)")
        self.reload_at = cfg.reload_every

    # --- batches --------------------------------------------------------------------------
    def batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        """(input mel, exact mel, real audio, teacher) crops, with gain augmentation."""
        c, hop, d = self.cfg, self.net_cfg.hop, self.train
        n, frames = len(d["audio"]), d["mel"].shape[1]
        edge = 16  # frames the clip's own edges (reflect padding) may have touched
        idx = rng.integers(0, n, c.batch)
        t0 = rng.integers(edge, frames - edge - c.frames, c.batch)
        use_codec = (rng.random(c.batch) < c.codec_fraction) & (d["codec_bits"][idx] > 0)
        gain = rng.uniform(-c.gain_aug_db, 0, c.batch) / 20 * math.log(10)
        mel_in, mel, audio, teacher = [], [], [], []
        for b, (i, t) in enumerate(zip(idx, t0, strict=True)):
            m = d["mel"][i, t:t + c.frames].astype(np.float32)
            mi = d["codec_mel"][i, t:t + c.frames].astype(np.float32) if use_codec[b] else m
            mel.append(m + gain[b])
            mel_in.append(mi + gain[b])
            g = math.exp(gain[b])
            audio.append(d["audio"][i, t * hop:(t + c.frames) * hop].astype(np.float32) * g)
            src = d["teacher"] if self.teacher else d["audio"]  # unused without a teacher
            teacher.append(src[i, t * hop:(t + c.frames) * hop].astype(np.float32) * g)
        floor = math.log(UNIVERSAL_MEL.log_floor)
        return tuple(torch.from_numpy(a.astype(np.float32)).to(self.device) for a in (
            np.maximum(np.stack(mel_in), floor), np.maximum(np.stack(mel), floor),
            np.stack(audio), np.stack(teacher)))

    def log_mel(self, y: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, frames, n_mels), the codec front-end's log-mel."""
        return log_mel(y, UNIVERSAL_MEL)

    # --- the loop's interface -------------------------------------------------------------
    def loss(self, step: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
        """Sum of the weighted losses on one batch."""
        c = self.cfg
        if c.reload_every and step >= self.reload_at:
            self.train = load_shards(self.data_dir / "train")
            self.reload_at = step + c.reload_every
        mel_in, mel, audio, teacher = self.batch(rng)
        net, n_fft, hop = self.model, self.net_cfg.n_fft, self.net_cfg.hop
        logmag, r, i = net.spectrum(mel_in)
        y = net.synthesize(logmag, r, i)
        parts = {}
        parts["mrstft"] = mrstft_loss(y, audio)
        parts["mel"] = (self.log_mel(y) - mel).abs().mean()
        sy = stft(y, n_fft, hop)
        norm = torch.rsqrt(r * r + i * i + 1e-9)
        head = torch.complex(r * norm, i * norm) * torch.exp(logmag)
        # head targets: the teacher (a function of the mel: its absolute phase is learnable) or
        # else the real audio (phase derivatives only: its absolute phase is not in the mel)
        st = stft(teacher if self.teacher else audio, n_fft, hop)
        mag_t = st.abs()
        scale = mag_t.mean()  # the complex term's scale
        parts["head_mag"] = (logmag - torch.log(mag_t + 1e-5)).abs().mean()
        w = torch.sqrt(mag_t)
        w = w / (w.mean() + 1e-7)
        ph, ph_t = torch.atan2(i, r), torch.angle(st)
        gd = (w[..., 1:] * _wrap(torch.diff(ph, dim=-1) - torch.diff(ph_t, dim=-1))).mean()
        iaf = (w[:, 1:] * _wrap(torch.diff(ph, dim=1) - torch.diff(ph_t, dim=1))).mean()
        parts["phase"] = gd + iaf
        if self.teacher:
            parts["wave"] = (y - teacher).abs().mean() * 10
            parts["phase"] = parts["phase"] + (w * _wrap(ph - ph_t)).mean()
        parts["consistency"] = (torch.log(sy.abs() + 1e-5) - logmag).abs().mean() + \
            (sy - head).abs().mean() / (scale + 1e-5)
        weights = {"mrstft": c.w_mrstft, "mel": c.w_mel, "wave": c.w_wave,
                   "head_mag": c.w_head_mag, "phase": c.w_phase,
                   "consistency": c.w_consistency}
        total = sum(weights[k] * v for k, v in parts.items() if weights[k])
        if self.disc is not None and step >= c.adv_start:
            from ldmz.codec.train.discriminators import adversarial_losses, discriminator_loss

            loss_d = discriminator_loss(self.disc(audio), self.disc(y.detach()))
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            torch.nn.utils.clip_grad_norm_(self.disc.parameters(), 10.0)
            self.opt_d.step()
            with torch.no_grad():
                real = self.disc(audio)
            parts["adv"], parts["fm"] = adversarial_losses(real, self.disc(y))
            parts["disc"] = loss_d.detach()
            total = total + c.w_adv * parts["adv"] + c.w_fm * parts["fm"]
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def extra_state(self) -> dict | None:
        """The discriminators and their optimizer, for the checkpoint."""
        if self.disc is None:
            return None
        return {"disc": self.disc.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        """Restore :meth:`extra_state`."""
        if self.disc is not None:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])

    def validate(self) -> dict:
        """From the exact and the codec mels of the val clips: log-mel L1, MR-STFT, speech PESQ."""
        from ldmz.codec.metrics.perceptual import pesq_wb
        from ldmz.codec.metrics.spectral import NotApplicable

        v = self.val
        out = {}
        audio = torch.from_numpy(v["audio"].astype(np.float32)).to(self.device)
        for key in ("mel", "codec_mel"):
            rows = np.arange(len(audio)) if key == "mel" else np.nonzero(v["codec_bits"])[0]
            if not len(rows):
                continue
            m = torch.from_numpy(v[key][rows].astype(np.float32)).to(self.device)
            y = torch.cat([self.model(m[j:j + 8]) for j in range(0, len(m), 8)])
            tag = "" if key == "mel" else "codec_"
            ref_mel = torch.from_numpy(v["mel"][rows].astype(np.float32)).to(self.device)
            out[f"{tag}mel_l1"] = float((self.log_mel(y) - ref_mel).abs().mean())
            out[f"{tag}mrstft"] = float(mrstft_loss(y, audio[rows]))
            if key == "mel":
                scores = []
                for j in np.nonzero(v["cat"] == "speech")[0]:
                    import soxr

                    ref = soxr.resample(v["audio"][j].astype(np.float32), 22050, 16000)
                    deg = soxr.resample(y[j].cpu().numpy(), 22050, 16000)
                    try:
                        scores.append(pesq_wb(ref, deg))
                    except NotApplicable:
                        pass
                if scores:
                    out["pesq_speech"] = float(np.mean(scores))
                    out["neg_pesq_speech"] = -out["pesq_speech"]
        return out

    def export(self, folder: Path, step: int) -> None:
        """Float16 safetensors + config (with the step and the data it saw) in ``folder``."""
        save(self.model, folder, meta={"step": step, "train_config": asdict(self.cfg)})


def train(cfg: VocoderTrainConfig, log=print) -> Path:  # noqa: ANN001 - a print-like callable
    """Run (or resume) a vocoder training; returns the run folder."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    task = VocoderTask(cfg)
    loop = LoopConfig(out=cfg.out, steps=cfg.steps, lr=cfg.lr, lr_min=cfg.lr_min,
                      warmup=cfg.warmup, seed=cfg.seed, log_every=cfg.log_every,
                      val_every=cfg.val_every, ckpt_every=cfg.ckpt_every,
                      time_budget_s=cfg.time_budget_s, select="neg_pesq_speech")
    return run(loop, task, log)

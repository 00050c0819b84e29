"""Shared fixtures: tiny seeded models of the real classes, saved and loaded like real weights."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

# The 22.05 kHz / 80-mel front-end of HiFi-GAN V1 (the ldmz-small configuration).
SMALL_MEL = {"sample_rate": 22050, "n_fft": 1024, "hop_length": 256, "win_length": 1024,
             "n_mels": 80, "fmin": 0.0, "fmax": 8000.0, "log_floor": 1e-5,
             "frontend": "hifigan"}


def _save_tiny_audioldm(folder: Path, seed: int = 0) -> Path:
    import torch
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=1, out_channels=1, latent_channels=8, block_out_channels=(8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1, norm_num_groups=4, sample_size=64, scaling_factor=0.5)
    vae.save_pretrained(folder / "vae")
    cfg = SpeechT5HifiGanConfig(
        model_in_dim=64, sampling_rate=16000, upsample_initial_channel=16,
        upsample_rates=[5, 4, 8], upsample_kernel_sizes=[10, 8, 16], resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1]], normalize_before=False)
    voc = SpeechT5HifiGan(cfg)
    with torch.no_grad():  # its default init (std 0.01) is near silent; make it audible
        for p in voc.parameters():
            if p.dim() > 1:
                torch.nn.init.xavier_uniform_(p)
    voc.save_pretrained(folder / "vocoder")
    return folder


def _save_tiny_patchvae(folder: Path, seed: int = 0) -> Path:
    import torch

    from ldmz.codec.models.patchvae import PatchVAE, PatchVAEConfig
    from ldmz.codec.train.trainer import export

    torch.manual_seed(seed)
    model = PatchVAE(PatchVAEConfig(width=8, enc_blocks=1, dec_blocks=2, refine_width=4))
    with torch.no_grad():  # non-zero residual branches, so every layer matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    export(model, folder)
    (folder / "ldmz.json").write_text(json.dumps({"mel": SMALL_MEL, "vocoder": "universal"}))
    return folder


@pytest.fixture(scope="session")
def tiny_audioldm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny AudioLDM2-style pipeline folder: vae/ (AutoencoderKL) and vocoder/ (HiFi-GAN)."""
    return _save_tiny_audioldm(tmp_path_factory.mktemp("tiny_audioldm"))


@pytest.fixture(scope="session")
def tiny_audioldm_other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same architecture with other weights (a different model)."""
    return _save_tiny_audioldm(tmp_path_factory.mktemp("tiny_audioldm_other"), seed=1)


@pytest.fixture(scope="session")
def tiny_patchvae(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PatchVAE folder (22.05 kHz / 80 mels) with its ldmz.json."""
    return _save_tiny_patchvae(tmp_path_factory.mktemp("tiny_patchvae"))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a busy machine the threads of one op wait
    for each other (spinning): one thread keeps the suite fast and its timing steady."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fresh_models() -> Iterator[None]:
    """Clear load_model's cache before and after a test that must load models afresh."""
    from ldmz.codec.models import load_model

    load_model.cache_clear()
    yield
    load_model.cache_clear()


class Signals:
    """Deterministic test signals (float32), as a fixture: ``signals.sine(1.0, 16000)``."""

    @staticmethod
    def sine(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
        """A sine of ``seconds`` at rate ``sr``."""
        return sine(seconds, sr, freq, amp)

    @staticmethod
    def chirp(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
        """A rising chirp plus a little noise, peak about 0.6."""
        return chirp_noise(seconds, sr, seed)


    @staticmethod
    def manifest(folder: Path, sr: int, train_seconds: float) -> Path:
        """A training manifest: ``train_seconds`` of chirp to train on, 1 s of sine for val."""
        import soundfile as sf

        sf.write(folder / "train.wav", chirp_noise(train_seconds, sr), sr)
        sf.write(folder / "val.wav", sine(1.0, sr, 300.0), sr)
        (folder / "manifest.csv").write_text(
            "path,split,category\ntrain.wav,train,x\nval.wav,val,x\n")
        return folder / "manifest.csv"


def write_dist(site: Path, name: str, version: str, pkg: str, modules: dict[str, str],
               entry_points: str) -> Path:
    """Hand-install a distribution into ``site``: package ``pkg`` with ``modules`` (file name ->
    source) and a dist-info with ``entry_points`` (the entry_points.txt text)."""
    (site / pkg).mkdir(parents=True)
    for fname, src in modules.items():
        (site / pkg / fname).write_text(src)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)
    (info / "top_level.txt").write_text(f"{pkg}\n")
    return site


@pytest.fixture(scope="session")
def dist_writer() -> Callable[..., Path]:
    """:func:`write_dist`, for tests that build plug-in distributions."""
    return write_dist


@pytest.fixture(scope="session")
def signals() -> type[Signals]:
    """Deterministic test signals."""
    return Signals


def sine(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    """A float32 sine of ``seconds`` at rate ``sr``."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp_noise(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A deterministic test signal: a rising chirp plus a little noise, peak about 0.6."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f = 200 + 1500 * t / max(seconds, 1e-9)
    x = 0.5 * np.sin(2 * np.pi * np.cumsum(f) / sr) + 0.05 * rng.standard_normal(len(t))
    return x.astype(np.float32)

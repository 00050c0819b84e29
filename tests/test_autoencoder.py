"""The Autoencoder protocol: the adapters implement it; a plug-in's own class runs the codec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ldmz.codec.errors import ModelError
from ldmz.codec.models import (
    Autoencoder,
    AutoencoderKLAdapter,
    LatentGeometry,
    LoadedModel,
    PatchVAEAdapter,
    load_model,
    registry,
)
from ldmz.codec.params import DecodeParams, EncodeParams
from ldmz.formats import MelParams, ModelInfo

MEL = MelParams(sample_rate=16000, n_fft=512, hop_length=128, win_length=512, n_mels=32,
                fmin=0.0, fmax=8000.0, log_floor=1e-5, frontend="hifigan")


class PoolAutoencoder:
    """A plug-in's own autoencoder, no ldmz class involved: 4x4 average pooling and repeat."""

    decoder_prefixes: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.geometry = LatentGeometry(channels=1, time_downsample=4, freq_downsample=4,
                                       encoder_rf=1, decoder_rf=1)
        self._module = torch.nn.Identity()

    @property
    def module(self) -> torch.nn.Module:
        return self._module

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(mel, 4)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z.repeat_interleave(4, -2).repeat_interleave(4, -1)

    def save(self, folder: Path) -> None:
        raise NotImplementedError


def test_adapters_implement_the_protocol(tiny_audioldm: Path, tiny_patchvae: Path) -> None:
    kl, pv = load_model(str(tiny_audioldm), "cpu"), load_model(str(tiny_patchvae), "cpu")
    assert isinstance(kl.autoencoder, AutoencoderKLAdapter)
    assert isinstance(pv.autoencoder, PatchVAEAdapter)
    for m in (kl, pv):
        assert isinstance(m.autoencoder, Autoencoder)
        g = m.geometry
        mel = torch.zeros(1, 1, 8 * g.time_downsample, m.mel.n_mels)
        z = m.encode(mel)
        assert z.shape == (1, g.channels, 8, m.mel.n_mels // g.freq_downsample)
        assert m.decode(z).shape == mel.shape
        assert m.context >= max(g.encoder_rf, g.decoder_rf) > 0
        names = [n for n, _ in m.vae.named_parameters()]
        assert any(n.startswith(m.autoencoder.decoder_prefixes) for n in names)
        assert not all(n.startswith(m.autoencoder.decoder_prefixes) for n in names)


def test_a_plugins_own_autoencoder_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    from ldmz.codec import plugins
    from ldmz.codec.api import decode, encode

    made = LoadedModel(info=ModelInfo("house-pool"), mel=MEL, autoencoder=PoolAutoencoder(),
                       vocoder="griffinlim")
    monkeypatch.setattr(plugins, "names", lambda group: ["house-pool"])
    monkeypatch.setattr(plugins, "call", lambda group, name, *a: made)
    load_model.cache_clear()
    try:
        x = np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000).astype(np.float32) * 0.3
        f = encode(x, 16000, EncodeParams(model="house-pool", bits=4))
        assert (f.header.latent.channels, f.header.latent.freq_bins) == (1, 8)
        y, sr = decode(f, DecodeParams(griffinlim_iters=2))
        assert sr == 16000 and y.shape == (1, len(x)) and np.isfinite(y).all()
    finally:
        load_model.cache_clear()


def test_plugin_results_are_checked() -> None:
    good = LoadedModel(info=ModelInfo("p"), mel=MEL, autoencoder=PoolAutoencoder())
    assert registry._plugin_model("p", good, "cpu") is good
    bad = LoadedModel(info=ModelInfo("p"), mel=MEL, autoencoder=object())  # type: ignore[arg-type]
    for got in (bad, 42):
        with pytest.raises(ModelError, match="plug-in 'p' returned .*Autoencoder"):
            registry._plugin_model("p", got, "cpu")


def test_patchvae_sliced_refine_gives_the_same_frames() -> None:
    """In inference the full-resolution refinement runs in slices (bounded memory): same values."""
    from ldmz.codec.models.patchvae import REFINE_SLICE, PatchVAE, PatchVAEConfig

    torch.manual_seed(0)
    vae = PatchVAE(PatchVAEConfig(width=16, dec_blocks=2)).eval()
    with torch.no_grad():
        for p in vae.refine.parameters():
            p.normal_(0, 0.3)
    z = torch.randn(2, 8, (3 * REFINE_SLICE + 10) // 4, 20)
    whole = vae.decode(z).detach()  # with gradients: one call
    with torch.inference_mode():
        torch.testing.assert_close(vae.decode(z), whole)


def test_patchvae_loads_on_meta_with_the_files_weights(tiny_patchvae: Path) -> None:
    """The folder loader builds PatchVAE without memory (meta device) and takes the file's
    tensors: the same parameters, dtype and trainability as a randomly initialised module
    that copies them in, nothing left on the meta device."""
    import json

    from safetensors.torch import load_file

    from ldmz.codec.models.patchvae import PatchVAE, PatchVAEConfig

    cfg = json.loads((tiny_patchvae / "config.json").read_text())
    got = registry.load_patchvae(tiny_patchvae, cfg)
    want = PatchVAE(PatchVAEConfig(**{k: v for k, v in cfg.items()
                                      if k in PatchVAEConfig.__dataclass_fields__}))
    want.load_state_dict(load_file(str(tiny_patchvae / "diffusion_pytorch_model.safetensors")))
    a, b = got.state_dict(), want.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype == torch.get_default_dtype() and a[k].device.type == "cpu"
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert all(p.requires_grad for p in got.parameters())
    assert load_model(str(tiny_patchvae), "cpu").vae.state_dict().keys() == a.keys()

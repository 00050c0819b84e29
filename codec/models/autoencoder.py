"""The Autoencoder protocol (what the codec needs of a mel VAE) and adapters for the two kinds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderKL

    from ldmz.codec.models.patchvae import PatchVAE


@dataclass(frozen=True)
class LatentGeometry:
    """The latent grid of a mel VAE and how far its convolutions see, in latent frames."""

    channels: int
    time_downsample: int  # mel frames per latent frame
    freq_downsample: int  # mel bins per latent bin
    encoder_rf: int = 16  # latent frames each side that one latent frame's encoding depends on
    decoder_rf: int = 16  # latent frames each side that one decoded latent frame depends on


@runtime_checkable
class Autoencoder(Protocol):
    """A mel VAE: (B, 1, T, n_mels) log-mel <-> (B, C, T / time_down, n_mels / freq_down) latents.

    ``module`` is the torch module holding the weights (moved, copied and trained as one);
    ``decoder_prefixes`` name its decoder-side parameters (what decoder fine-tuning trains).
    Model plug-ins return a LoadedModel whose ``autoencoder`` implements this protocol.
    """

    @property
    def geometry(self) -> LatentGeometry:
        """The latent grid and the receptive fields."""

    @property
    def decoder_prefixes(self) -> tuple[str, ...]:
        """Name prefixes of the decoder-side parameters of ``module``."""

    @property
    def module(self) -> torch.nn.Module:
        """The torch module holding every weight."""

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """Latent mean of a (B, 1, T, n_mels) log-mel batch."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Log-mel (B, 1, T, n_mels) from latents."""

    def save(self, folder: Path) -> None:
        """Write the weights and config in diffusers layout (config.json + safetensors)."""


def autoencoderkl_fields(config: Any) -> tuple[int, int]:  # a diffusers config
    """Convolutional receptive radius (encoder, decoder) of a diffusers AutoencoderKL, in latents.

    Counts the 3x3 convolutions at each resolution (conv_in, resnets, resamplers, mid block,
    conv_out). The mid-block attention and GroupNorm are global but weak; the cross-fade
    between windows covers what they change.
    """
    n, per = len(config.block_out_channels), config.layers_per_block
    down = 2 ** (n - 1)
    enc = 1 + sum(2 * per * 2**i for i in range(n)) + sum(2**i for i in range(n - 1)) + 5 * down
    dec = 5 * down + 1 + sum(2 * (per + 1) * 2 ** (n - 1 - i) + (2 ** (n - 2 - i) if i < n - 1
                                                                 else 0) for i in range(n))
    return -(-enc // down) + 1, -(-dec // down) + 1


def patchvae_fields(config: Any) -> tuple[int, int]:  # a PatchVAEConfig
    """Receptive radius (encoder, decoder) of a PatchVAE, in latent frames."""
    dil = [2 ** (i % 3) for i in range(max(config.enc_blocks, config.dec_blocks))]
    enc = 1 + sum(d + 1 for d in dil[:config.enc_blocks]) + 1
    dec = 1 + sum(d + 1 for d in dil[:config.dec_blocks]) + -(-3 // config.patch) + 1
    return enc, dec


class AutoencoderKLAdapter:
    """A diffusers ``AutoencoderKL`` (the AudioLDM / AudioLDM2 VAEs) as an Autoencoder."""

    decoder_prefixes: ClassVar[tuple[str, ...]] = ("post_quant_conv.", "decoder.")

    def __init__(self, vae: AutoencoderKL) -> None:
        cfg = vae.config
        down = 2 ** (len(cfg.block_out_channels) - 1)
        enc_rf, dec_rf = autoencoderkl_fields(cfg)
        self.vae = vae
        self.geometry = LatentGeometry(cfg.latent_channels, down, down, enc_rf, dec_rf)

    @property
    def module(self) -> torch.nn.Module:
        """The AutoencoderKL itself."""
        return self.vae

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """The posterior mean (no sampling: the codec is deterministic)."""
        return self.vae.encode(mel).latent_dist.mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's sample."""
        return self.vae.decode(z).sample

    def save(self, folder: Path) -> None:
        """``save_pretrained`` (safetensors), without diffusers' notices."""
        from ldmz.codec.models.registry import quiet_loading

        with quiet_loading():
            self.vae.save_pretrained(folder)


class PatchVAEAdapter:
    """ldmz's own ``PatchVAE`` (ldmz-small) as an Autoencoder."""

    decoder_prefixes: ClassVar[tuple[str, ...]] = ("proj_out.", "dec.", "refine.")
    # convolutions only (no normalization over time): decode windows of any length whose
    # context covers the receptive field give the same frames (AutoencoderKL's GroupNorm does
    # not; autoencoders without this attribute are taken to depend on their window)
    window_exact: ClassVar[bool] = True

    def __init__(self, vae: PatchVAE) -> None:
        cfg = vae.config
        enc_rf, dec_rf = patchvae_fields(cfg)
        self.vae = vae
        self.geometry = LatentGeometry(cfg.latent_channels, cfg.patch, cfg.patch, enc_rf, dec_rf)

    @property
    def module(self) -> torch.nn.Module:
        """The PatchVAE itself."""
        return self.vae

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """PatchVAE's encoder output (its latent mean)."""
        return self.vae.encode(mel)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """PatchVAE's decoder output."""
        return self.vae.decode(z)

    def save(self, folder: Path) -> None:
        """config.json + diffusion_pytorch_model.safetensors, as training exports it."""
        from ldmz.codec.train.trainer import export

        export(self.vae, folder)

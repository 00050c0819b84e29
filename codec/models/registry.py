"""The model registry and loader: AudioLDM2-family VAEs (diffusers) and ldmz's PatchVAE folders."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from ldmz.formats import LdmzError, MelParams, ModelInfo

DEFAULT_MODEL = "ldmz-small"
FADE_LATENT = 4  # latent frames over which neighbouring decode windows cross-fade
EMBEDDED_DIR = Path(__file__).parent  # embedded model folders live beside this module

# AudioLDM / AudioLDM2 front-end: 16 kHz, 64 mels, n_fft 1024, hop 160 (see frontend.py).
AUDIOLDM_MEL = MelParams(sample_rate=16000, n_fft=1024, hop_length=160, win_length=1024,
                         n_mels=64, fmin=0.0, fmax=8000.0, log_floor=1e-5, frontend="audioldm")


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: where the weights are and how the model's front-end is set."""

    name: str
    repo: str = ""  # hub id, or "" for a local folder
    revision: str = "main"
    mel: MelParams = AUDIOLDM_MEL
    scaling_factor: float | None = None  # None: read from the VAE config
    vocoder: str = "hifigan"
    note: str = ""


# The AudioLDM2 family shares the VAE architecture (8 latent channels, 4x down-sampling) and the
# 16 kHz / 64-mel front-end; each checkpoint's scaling factor comes from its vae/config.json.
REGISTRY: dict[str, ModelSpec] = {
    "cvssp/audioldm2": ModelSpec("cvssp/audioldm2", "cvssp/audioldm2",
                                 scaling_factor=0.4110932946205139),
    "cvssp/audioldm2-large": ModelSpec("cvssp/audioldm2-large", "cvssp/audioldm2-large"),
    "cvssp/audioldm2-music": ModelSpec("cvssp/audioldm2-music", "cvssp/audioldm2-music"),
    "cvssp/audioldm-s-full-v2": ModelSpec("cvssp/audioldm-s-full-v2", "cvssp/audioldm-s-full-v2"),
    "cvssp/audioldm-m-full": ModelSpec("cvssp/audioldm-m-full", "cvssp/audioldm-m-full"),
    "cvssp/audioldm-l-full": ModelSpec("cvssp/audioldm-l-full", "cvssp/audioldm-l-full"),
}


class ModelError(LdmzError, LookupError):
    """A model cannot be found or loaded, or does not match a file."""


@dataclass
class LoadedModel:
    """A VAE ready to encode (B,1,T,n_mels) log-mels to latents and back."""

    info: ModelInfo
    mel: MelParams
    vae: object
    kind: str  # "autoencoderkl" | "patchvae"
    latent_channels: int
    time_downsample: int = 4
    freq_downsample: int = 4
    vocoder: str = "hifigan"
    folder: Path | None = None
    device: str = "cpu"
    extra: dict = field(default_factory=dict)
    encoder_rf: int = 16  # latent frames each side that one latent frame's encoding depends on
    decoder_rf: int = 16  # latent frames each side that one decoded latent frame depends on

    @property
    def context(self) -> int:
        """Latent frames of context each side of a window: the receptive field plus half a fade."""
        return max(self.encoder_rf, self.decoder_rf + FADE_LATENT // 2)

    def encode(self, mel):  # noqa: ANN001, ANN201 - torch tensors
        """Latent mean of a (B, 1, T, n_mels) log-mel batch."""
        if self.kind == "patchvae":
            return self.vae.encode(mel)
        return self.vae.encode(mel).latent_dist.mean

    def decode(self, z):  # noqa: ANN001, ANN201 - torch tensors
        """Log-mel (B, 1, T, n_mels) from latents."""
        if self.kind == "patchvae":
            return self.vae.decode(z)
        return self.vae.decode(z).sample

    def load_own_vocoder(self, device: str = "cpu"):  # noqa: ANN201 - SpeechT5HifiGan | None
        """The model's own SpeechT5HifiGan (folder's vocoder/), or None if it has none."""
        if self.folder is not None and (self.folder / "vocoder" / "config.json").exists():
            from transformers import SpeechT5HifiGan

            with quiet_loading():
                net = SpeechT5HifiGan.from_pretrained(self.folder / "vocoder")
            return net.eval().to(device)
        if self.extra.get("repo"):
            from transformers import SpeechT5HifiGan

            with quiet_loading():
                net = SpeechT5HifiGan.from_pretrained(
                    self.extra["repo"], subfolder="vocoder", revision=self.extra["revision"],
                    local_files_only=self.extra["offline"])
            return net.eval().to(device)
        return None


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks cuda when available, else cpu; an absent CUDA device is a ModelError."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        why = ("this torch is a CPU-only build" if torch.version.cuda is None
               else "torch sees no CUDA GPU")
        raise ModelError(f"device '{device}' is not available: {why} (torch {torch.__version__})"
                         f"; use --device cpu or auto")
    return device


def weights_hash(folder: Path) -> str:
    """SHA-256 over the folder's *.safetensors files (name and bytes), hex."""
    h = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def autoencoderkl_fields(config) -> tuple[int, int]:  # noqa: ANN001 - a diffusers config
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


def patchvae_fields(config) -> tuple[int, int]:  # noqa: ANN001 - a PatchVAEConfig
    """Receptive radius (encoder, decoder) of a PatchVAE, in latent frames."""
    dil = [2 ** (i % 3) for i in range(max(config.enc_blocks, config.dec_blocks))]
    enc = 1 + sum(d + 1 for d in dil[:config.enc_blocks]) + 1
    dec = 1 + sum(d + 1 for d in dil[:config.dec_blocks]) + -(-3 // config.patch) + 1
    return enc, dec


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence diffusers'/transformers' load-time notices and progress bars (restored after).

    Acts on whichever of the two is imported already (the caller imports what it loads with).
    """
    import sys

    logs = [m.utils.logging for m in map(sys.modules.get, ("diffusers", "transformers")) if m]
    levels = [lg.get_verbosity() for lg in logs]
    tl = sys.modules["transformers"].utils.logging if "transformers" in sys.modules else None
    bars = tl is not None and tl.is_progress_bar_enabled()
    for lg in logs:
        lg.set_verbosity_error()
    if bars:
        tl.disable_progress_bar()
    try:
        yield
    finally:
        for lg, level in zip(logs, levels, strict=True):
            lg.set_verbosity(level)
        if bars:
            tl.enable_progress_bar()


def _folder_meta(folder: Path) -> dict:
    meta = folder / "ldmz.json"
    return json.loads(meta.read_text()) if meta.exists() else {}


def _vae_folder(folder: Path) -> Path:
    return folder / "vae" if (folder / "vae" / "config.json").exists() else folder


def load_folder(folder: Path, device: str = "cpu", name: str | None = None,
                spec: ModelSpec | None = None) -> LoadedModel:
    """Load a model from a folder in diffusers layout (a VAE folder, or a pipeline with vae/)."""
    try:
        return _load_folder(folder, device, name, spec)
    except ModelError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        why = " ".join(str(e).split())[:200]
        raise ModelError(f"{folder}: cannot load the model ({type(e).__name__}: {why}); "
                         f"re-download or re-export it") from e


def _load_folder(folder: Path, device: str, name: str | None,
                 spec: ModelSpec | None) -> LoadedModel:
    vfolder = _vae_folder(folder)
    cfg_path = vfolder / "config.json"
    if not cfg_path.exists():
        raise ModelError(f"{folder}: no config.json or vae/config.json; pass a folder in "
                         f"diffusers layout (config.json + diffusion_pytorch_model.safetensors)")
    cfg = json.loads(cfg_path.read_text())
    meta = _folder_meta(folder)
    mel = MelParams(**meta["mel"]) if "mel" in meta else (spec.mel if spec else AUDIOLDM_MEL)
    cls = cfg.get("_class_name", "")
    if cls == "PatchVAE":
        from safetensors.torch import load_file

        from ldmz.codec.models.patchvae import PatchVAE, PatchVAEConfig

        keys = PatchVAEConfig.__dataclass_fields__
        vae = PatchVAE(PatchVAEConfig(**{k: v for k, v in cfg.items() if k in keys}))
        vae.load_state_dict(load_file(str(vfolder / "diffusion_pytorch_model.safetensors")))
        kind, lc, down, scale = "patchvae", vae.config.latent_channels, vae.config.patch, 1.0
        rf = patchvae_fields(vae.config)
    elif cls == "AutoencoderKL":
        from diffusers import AutoencoderKL

        with quiet_loading():
            vae = AutoencoderKL.from_pretrained(vfolder)
        kind, lc = "autoencoderkl", vae.config.latent_channels
        down = 2 ** (len(vae.config.block_out_channels) - 1)
        scale = float(vae.config.scaling_factor)
        rf = autoencoderkl_fields(vae.config)
    else:
        raise ModelError(f"{cfg_path}: unsupported model class '{cls}' (AutoencoderKL or PatchVAE)")
    info = ModelInfo(id=name or str(folder.resolve()), revision=meta.get("revision", ""),
                     weights_sha256=weights_hash(vfolder), scaling_factor=scale)
    base = meta.get("encoder_of")
    if isinstance(base, dict):  # a fine-tuned decoder: the latents are the base model's
        info = ModelInfo(id=str(base["id"]), revision=str(base.get("revision", "")),
                         weights_sha256=str(base.get("weights_sha256", "")),
                         scaling_factor=float(base.get("scaling_factor", scale)),
                         decoder_sha256=info.weights_sha256)
    return LoadedModel(info=info, mel=mel, vae=vae.eval().to(device), kind=kind,
                       latent_channels=lc, time_downsample=down, freq_downsample=down,
                       vocoder=meta.get("vocoder", spec.vocoder if spec else "hifigan"),
                       folder=folder, device=device, encoder_rf=rf[0], decoder_rf=rf[1])


def _load_hub(spec: ModelSpec, device: str, offline: bool) -> LoadedModel:
    from diffusers import AutoencoderKL

    try:
        with quiet_loading():
            vae = AutoencoderKL.from_pretrained(spec.repo, subfolder="vae",
                                                revision=spec.revision, local_files_only=offline)
    except (OSError, ValueError) as e:
        where = "the Hugging Face cache" + ("" if offline else " and the hub")
        raise ModelError(
            f"model '{spec.name}' not found in {where} ({type(e).__name__}); get it with "
            f"`huggingface-cli download {spec.repo}` or pass --model PATH to a local copy"
        ) from e
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(spec.repo, revision=spec.revision, local_files_only=True,
                                      allow_patterns=["vae/*"]))
        sha = weights_hash(path / "vae")
    except Exception:  # hashing is best effort when the cache layout is unusual
        sha = ""
    scale = spec.scaling_factor or float(vae.config.scaling_factor)
    rf = autoencoderkl_fields(vae.config)
    info = ModelInfo(id=spec.name, revision=spec.revision, weights_sha256=sha,
                     scaling_factor=scale)
    return LoadedModel(info=info, mel=spec.mel, vae=vae.eval().to(device), kind="autoencoderkl",
                       latent_channels=vae.config.latent_channels, vocoder=spec.vocoder,
                       device=device, encoder_rf=rf[0], decoder_rf=rf[1],
                       extra={"repo": spec.repo, "revision": spec.revision, "offline": offline})


@lru_cache(maxsize=4)
def load_model(name: str = DEFAULT_MODEL, device: str = "auto",
               offline: bool | None = None) -> LoadedModel:
    """Load a registered model by name, or a local folder by path."""
    device = resolve_device(device)
    if offline is None:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    embedded = EMBEDDED_DIR / name
    if "/" not in name and embedded.is_dir():
        return load_folder(embedded, device, name)
    if name in REGISTRY:
        return _load_hub(REGISTRY[name], device, offline)
    folder = Path(name).expanduser()
    if folder.is_dir():
        return load_folder(folder, device)
    from ldmz.codec import plugins

    if name in plugins.names(plugins.MODELS):
        # a plug-in entry point is a factory: (device) -> LoadedModel (or a model folder path)
        try:
            got = plugins.call(plugins.MODELS, name, device)
        except RuntimeError as e:
            raise ModelError(str(e)) from e
        return load_folder(Path(got), device, name) if isinstance(got, str | os.PathLike) else got
    raise ModelError(f"model '{name}' not found: not a registered name "
                     f"({', '.join(available_models())}) and no folder at {folder.resolve()}; "
                     f"pass --model with one of those names or a folder in diffusers layout")


def available_models() -> list[str]:
    """Registered model names (embedded first)."""
    emb = sorted(p.name for p in EMBEDDED_DIR.iterdir() if (p / "config.json").exists()) \
        if EMBEDDED_DIR.is_dir() else []
    return emb + list(REGISTRY)


def with_decoder(model: LoadedModel, decoder_sha: str) -> LoadedModel:
    """A copy of ``model`` whose info records a fine-tuned decoder's hash."""
    return replace(model, info=replace(model.info, decoder_sha256=decoder_sha))

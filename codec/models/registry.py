"""The model registry and loader: AudioLDM2-family VAEs (diffusers) and ldmz's PatchVAE folders."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ldmz.codec.dsp.frontend import AUDIOLDM_MEL
from ldmz.codec.errors import ModelError, WeightsHashWarning
from ldmz.codec.models.autoencoder import (
    Autoencoder,
    AutoencoderKLAdapter,
    LatentGeometry,
    PatchVAEAdapter,
)
from ldmz.codec.params import DEFAULT_MODEL
from ldmz.formats import EntropyTables, MelParams, ModelInfo

if TYPE_CHECKING:
    import torch
    from transformers import SpeechT5HifiGan

    from ldmz.codec.models.patchvae import PatchVAE

FADE_LATENT = 4  # latent frames over which neighbouring decode windows cross-fade
TABLES_FILE = "entropy/tables.safetensors.zst"  # a model folder's entropy tables (optional)
TABLES_GLOB = "entropy/*.safetensors.zst"  # all its tables: earlier ones stay, for old files
EMBEDDED_DIR = Path(__file__).parent  # embedded model folders live beside this module



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


@dataclass(frozen=True)
class HubSource:
    """Where a hub model came from, so its own vocoder loads from the same snapshot."""

    repo: str
    revision: str
    offline: bool


@dataclass
class LoadedModel:
    """A model ready to run: its identity, mel front-end, autoencoder and default vocoder."""

    info: ModelInfo
    mel: MelParams
    autoencoder: Autoencoder
    vocoder: str = "hifigan"
    folder: Path | None = None
    device: str = "cpu"
    hub: HubSource | None = None  # the own vocoder's source when ``folder`` has none
    tables: EntropyTables | None = None  # entropy tables for rans coding (folder's TABLES_FILE)
    default_quality: int = 0  # the tables' default quality (their metadata's "default")

    @property
    def geometry(self) -> LatentGeometry:
        """The autoencoder's latent grid and receptive fields."""
        return self.autoencoder.geometry

    @property
    def vae(self) -> torch.nn.Module:
        """The torch module holding the autoencoder's weights."""
        return self.autoencoder.module

    @property
    def context(self) -> int:
        """Latent frames of context each side of a window: the receptive field plus half a fade."""
        g = self.geometry
        return max(g.encoder_rf, g.decoder_rf + FADE_LATENT // 2)

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """Latent mean of a (B, 1, T, n_mels) log-mel batch."""
        return self.autoencoder.encode(mel)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Log-mel (B, 1, T, n_mels) from latents."""
        return self.autoencoder.decode(z)

    def tables_for(self, prefix: str) -> EntropyTables | None:
        """The tables whose hash starts with ``prefix``: the writer's (``tables``) or an earlier
        set kept in the folder for the files made with it; None if there is none."""
        if self.tables is not None and prefix and self.tables.sha256.startswith(prefix):
            return self.tables
        return folder_tables(self.folder, prefix) if self.folder is not None else None

    def load_own_vocoder(self, device: str = "cpu") -> SpeechT5HifiGan | None:
        """The model's own SpeechT5HifiGan (folder's vocoder/, else the hub's), or None."""
        if self.folder is not None and (self.folder / "vocoder" / "config.json").exists():
            source, kw = str(self.folder / "vocoder"), {}
        elif self.hub is not None:
            source, kw = self.hub.repo, {"subfolder": "vocoder", "revision": self.hub.revision,
                                         "local_files_only": self.hub.offline}
        else:
            return None
        from transformers import SpeechT5HifiGan

        with quiet_loading():
            net = SpeechT5HifiGan.from_pretrained(source, **kw)
        return net.eval().to(device)


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


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence diffusers'/transformers' load-time notices and progress bars (restored after).

    Acts on whichever of the two is imported already (the caller imports what it loads with).
    """
    import sys

    logs = [m.utils.logging for m in map(sys.modules.get, ("diffusers", "transformers")) if m]
    levels = [lg.get_verbosity() for lg in logs]
    tl = sys.modules["transformers"].utils.logging if "transformers" in sys.modules else None
    bars = tl if tl is not None and tl.is_progress_bar_enabled() else None
    for lg in logs:
        lg.set_verbosity_error()
    if bars is not None:
        bars.disable_progress_bar()
    try:
        yield
    finally:
        for lg, level in zip(logs, levels, strict=True):
            lg.set_verbosity(level)
        if bars is not None:
            bars.enable_progress_bar()


def _folder_meta(folder: Path) -> dict[str, Any]:
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


def load_patchvae(vfolder: Path, cfg: dict[str, Any]) -> PatchVAE:
    """The PatchVAE of ``vfolder`` (its config.json read as ``cfg``), in torch's default dtype.

    The module is built on the meta device (no memory, no random initialisation) and takes
    the file's tensors, converted to that dtype, as its own: one copy of the weights is made.
    """
    import torch
    from safetensors.torch import load_file

    from ldmz.codec.models.patchvae import PatchVAE, PatchVAEConfig

    keys = PatchVAEConfig.__dataclass_fields__
    with torch.device("meta"):
        vae = PatchVAE(PatchVAEConfig(**{k: v for k, v in cfg.items() if k in keys}))
    state = load_file(str(vfolder / "diffusion_pytorch_model.safetensors"))
    dtype = torch.get_default_dtype()  # what a built module's parameters are
    for k in list(state):  # one tensor at a time (the embedded file stores float16)
        state[k] = state[k].to(dtype)
    vae.load_state_dict(state, assign=True)  # strict: a missing tensor is an error
    return vae


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
        ae: Autoencoder = PatchVAEAdapter(
            load_patchvae(vfolder, cfg).eval().to(device))
        scale = 1.0
    elif cls == "AutoencoderKL":
        from diffusers import AutoencoderKL

        with quiet_loading():
            vae = AutoencoderKL.from_pretrained(vfolder)
        ae, scale = AutoencoderKLAdapter(vae.eval().to(device)), float(vae.config.scaling_factor)
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
    tables, default_q = _tables(folder)
    return LoadedModel(info=info, mel=mel, autoencoder=ae,
                       vocoder=meta.get("vocoder", spec.vocoder if spec else "hifigan"),
                       folder=folder, device=device, tables=tables, default_quality=default_q)


def find_tables(name: str, prefix: str = "") -> EntropyTables | None:
    """The entropy tables of the embedded model ``name`` whose hash starts with ``prefix`` (""
    : the writer's), without loading weights; None for any other name (a file names models,
    never paths: folders' tables are passed by the user) or hash."""
    embedded = EMBEDDED_DIR / name
    ok = "/" not in name and "\\" not in name and name not in ("", ".", "..")
    if not (ok and embedded.is_dir()):
        return None
    return folder_tables(embedded, prefix) if prefix else _tables(embedded)[0]


def folder_tables(folder: Path, prefix: str) -> EntropyTables | None:
    """The tables file of ``folder`` (any ``TABLES_GLOB``) whose SHA-256 starts with ``prefix``."""
    if not prefix:
        return None
    for path in sorted(folder.glob(TABLES_GLOB)):
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if _file_sha256(*key).startswith(prefix):
            return _load_tables(*key)
    return None


@lru_cache(maxsize=64)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@lru_cache(maxsize=8)
def _load_tables(path: str, mtime_ns: int, size: int) -> EntropyTables:
    from ldmz.formats.entropy import load_tables

    return load_tables(path)


def dataset_tables(source: str | os.PathLike[str]) -> EntropyTables | None:
    """The tables of the model that made a dataset's first file, if it is entropy-coded (a
    dataset is one model's latents); ModelError if that model's folder is not found."""
    from ldmz.formats import LdmzFile
    from ldmz.formats.dataset import list_items

    items = list_items(source)
    if not items:
        return None
    f = LdmzFile.load(items[0].path, lazy=True)
    if not f.entropy_coded:
        return None
    tables = find_tables(f.header.model.id, f.header.quantizer.tables_sha256)
    if tables is None:
        raise ModelError(f"{items[0].path}: entropy-coded by a model that is not embedded; pass "
                         f"tables=load_tables(MODEL_FOLDER/{TABLES_FILE})")
    return tables


def _tables(folder: Path) -> tuple[EntropyTables | None, int]:
    """The folder's entropy tables and their default quality, or (None, 0) if it has none."""
    from ldmz.formats.entropy import load_tables, read_tables_meta

    path = folder / TABLES_FILE
    if not path.exists():
        return None, 0
    tables = load_tables(path)
    default = read_tables_meta(path).get("default", "0")
    q = int(default) if default.isdigit() else 0
    return tables, min(q, tables.qualities - 1)


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
    except (OSError, ValueError) as e:  # hub errors for a missing entry are both
        warnings.warn(f"{spec.name}: cannot hash the cached VAE weights ({type(e).__name__}: "
                      f"{e}); files written now record no weights hash, so decoding checks "
                      f"only the model id", WeightsHashWarning, stacklevel=2)
        sha = ""
    scale = spec.scaling_factor or float(vae.config.scaling_factor)
    info = ModelInfo(id=spec.name, revision=spec.revision, weights_sha256=sha,
                     scaling_factor=scale)
    return LoadedModel(info=info, mel=spec.mel, autoencoder=AutoencoderKLAdapter(
        vae.eval().to(device)), vocoder=spec.vocoder, device=device,
        hub=HubSource(spec.repo, spec.revision, offline))


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
        return _plugin_model(name, got, device)
    raise ModelError(f"model '{name}' not found: not a registered name "
                     f"({', '.join(available_models())}) and no folder at {folder.resolve()}; "
                     f"pass --model with one of those names or a folder in diffusers layout")


def load_named_model(model_id: str, device: str = "auto", offline: bool | None = None,
                     source: str = "<file>") -> LoadedModel:
    """The model a file names: an embedded model, a registry name or an installed plug-in.

    A file names a model, never a path: an id that is none of those (a folder, ``..``, ``~``)
    is refused, so a file cannot make ldmz load and run code or weights from anywhere on disk.
    A registry name loads from the local Hugging Face cache only (a file does not start a
    download). A local folder is used only when the user passes it (``--model PATH``), and
    then its weights hash must match the file's.
    """
    from ldmz.codec import plugins

    embedded = [p.name for p in EMBEDDED_DIR.iterdir() if (p / "config.json").exists()] \
        if EMBEDDED_DIR.is_dir() else []
    if model_id in embedded:
        return load_model(model_id, device, offline)
    if model_id in REGISTRY:
        return load_model(model_id, device, True)
    if model_id in plugins.names(plugins.MODELS):
        return load_model(model_id, device, offline)
    shown = model_id.encode("unicode_escape", "backslashreplace").decode("ascii")[:200]
    raise ModelError(f"{source}: names model '{shown}', which is not a registered model "
                     f"({', '.join(available_models())}) or an installed plug-in; if you have "
                     f"that model, pass its folder with --model PATH")


def available_models() -> list[str]:
    """Registered model names (embedded first)."""
    emb = sorted(p.name for p in EMBEDDED_DIR.iterdir() if (p / "config.json").exists()) \
        if EMBEDDED_DIR.is_dir() else []
    return emb + list(REGISTRY)


def _plugin_model(name: str, got: object, device: str) -> LoadedModel:
    """What a model plug-in returned: a folder path, or a LoadedModel with an Autoencoder."""
    if isinstance(got, str | os.PathLike):
        return load_folder(Path(got), device, name)
    if isinstance(got, LoadedModel) and isinstance(got.autoencoder, Autoencoder):
        return got
    raise ModelError(f"model plug-in '{name}' returned {type(got).__name__}, not a model folder "
                     f"nor a LoadedModel whose autoencoder implements "
                     f"ldmz.codec.models.Autoencoder; fix the plug-in or uninstall it")

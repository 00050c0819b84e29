"""Models: the registry and loader (``registry``), the PatchVAE, and the embedded weights."""

from __future__ import annotations

from ldmz.codec.dsp.frontend import AUDIOLDM_MEL
from ldmz.codec.errors import ModelError
from ldmz.codec.models.autoencoder import (
    Autoencoder,
    AutoencoderKLAdapter,
    LatentGeometry,
    PatchVAEAdapter,
    autoencoderkl_fields,
    patchvae_fields,
)
from ldmz.codec.models.registry import (
    EMBEDDED_DIR,
    FADE_LATENT,
    HubSource,
    LoadedModel,
    ModelSpec,
    available_models,
    load_folder,
    load_model,
    load_named_model,
    quiet_loading,
    resolve_device,
    weights_hash,
)
from ldmz.codec.params import DEFAULT_MODEL

__all__ = [
    "AUDIOLDM_MEL",
    "Autoencoder",
    "AutoencoderKLAdapter",
    "HubSource",
    "LatentGeometry",
    "PatchVAEAdapter",
    "DEFAULT_MODEL",
    "EMBEDDED_DIR",
    "FADE_LATENT",
    "LoadedModel",
    "ModelError",
    "ModelSpec",
    "autoencoderkl_fields",
    "available_models",
    "load_folder",
    "load_model",
    "load_named_model",
    "patchvae_fields",
    "quiet_loading",
    "resolve_device",
    "weights_hash",
]

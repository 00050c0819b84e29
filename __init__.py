"""ldmz: a neural audio codec on the latent space of AudioLDM2-style mel VAEs."""

from __future__ import annotations

import os

import numpy as np

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(path: str | os.PathLike, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Read audio or a `.ldmz` file: ``(audio float32 (channels, samples), sample_rate)``."""
    from ldmz.codec.api import load as _load

    return _load(path, sr=sr)

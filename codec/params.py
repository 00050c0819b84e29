"""Codec parameters as frozen dataclasses, defaults defined once for CLI, GUI and tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncodeParams:
    """How audio becomes a `.ldmz` file."""

    model: str = "ldmz-small"
    bits: int = 2
    chunk_seconds: float = 10.0
    vocoder: str = ""  # the default vocoder recorded in the file; "" = the model's own
    device: str = "auto"
    offline: bool = False


@dataclass(frozen=True)
class DecodeParams:
    """How a `.ldmz` file becomes audio."""

    vocoder: str = ""  # "" = the file's default
    sr: int = 0  # 0 = the source's rate
    griffinlim_iters: int = 32
    precision: str = "fp32"  # "fp32" or "bf16" (autocast)
    device: str = "auto"
    model: str = ""  # "" = the model named in the file
    offline: bool = False

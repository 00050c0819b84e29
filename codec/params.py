"""Codec parameters as frozen dataclasses, defaults defined once for CLI, GUI and tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from ldmz.codec.errors import ConfigError

T = TypeVar("T")

# The embedded models: the entropy coding's default was fine-tuned for it (rate-distortion), the
# affine coding's (``--bits``) is the model whose min/max grid it was designed with.
DEFAULT_MODEL = "ldmz-small-rd"
AFFINE_MODEL = "ldmz-small"


@dataclass(frozen=True)
class EncodeParams:
    """How audio becomes a `.ldmz` file."""

    model: str = ""  # a name or folder; "" = DEFAULT_MODEL, or AFFINE_MODEL for coding="affine"
    bits: int = 2  # affine coding: bits of the widest latent channel
    chunk_seconds: float = 10.0
    # "auto": entropy-coded ("rans") when the model folder has entropy tables, else "affine"
    # (then ``bits`` is not used: ask for coding="affine" to get format 1 at ``bits``)
    coding: str = "auto"
    quality: int = -1  # rans: quality level of the model's tables; -1 = the tables' default
    kbps: float = 0.0  # rans: pick the highest quality whose file fits this rate (0 = off)
    vocoder: str = ""  # the default vocoder recorded in the file; "" = the model's own
    device: str = "auto"
    offline: bool = False

    def model_name(self) -> str:
        """The model to encode with: ``model``, else the coding's default model."""
        return self.model or (AFFINE_MODEL if self.coding == "affine" else DEFAULT_MODEL)


@dataclass(frozen=True)
class DecodeParams:
    """How a `.ldmz` file becomes audio."""

    vocoder: str = ""  # "" = the file's default
    sr: int = 0  # 0 = the source's rate
    griffinlim_iters: int = 32
    precision: str = "auto"  # "auto", "fp32" or "bf16" (autocast; vocoders.resolve_precision)
    device: str = "auto"
    model: str = ""  # "" = the model named in the file
    offline: bool = False


def _check_type(path: str, name: str, value: object, default: object) -> None:
    """Refuse a config value whose type differs from the field default's (int passes for float)."""
    want = type(default)
    if default is None or want not in (bool, int, float, str):
        return
    ok = isinstance(value, want) and (want is bool or not isinstance(value, bool))
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise ConfigError(f"{path}: key '{name}' must be {want.__name__}, got {value!r}; "
                          f"fix the config file")


def _read_json(path: str) -> dict[str, Any]:
    """The JSON object in ``path``; a parse error names the file, line and column."""
    try:
        raw = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column "
                          f"{e.colno}); fix the config file") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a JSON object {{...}}, got "
                          f"{type(raw).__name__}")
    return raw


def from_json(cls: type[T], path: str | None, **overrides: object) -> T:
    """The dataclass ``cls`` from a JSON file (unknown keys and wrong types refused) + overrides."""
    return from_mapping(cls, _read_json(path) if path else {}, str(path), **overrides)


def from_mapping(cls: type[T], raw: dict[str, Any], where: str, **overrides: object) -> T:
    """The dataclass ``cls`` from ``raw`` (unknown keys and wrong types refused, each message
    naming ``where``), then the non-None ``overrides``."""
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    bad = sorted(set(raw) - set(known))
    if bad:
        raise ConfigError(f"{where}: unknown config keys {bad}; known keys: "
                          f"{', '.join(sorted(known))}")
    defaults = cls()
    for name, value in raw.items():
        _check_type(where, name, value, getattr(defaults, name))
    raw = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    return cls(**raw)

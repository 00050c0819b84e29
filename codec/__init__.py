"""Audio <-> LdmzFile: mel front-end, models, vocoders, chunking, metrics and the `ldmz` command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ldmz.codec.params import DecodeParams, EncodeParams

if TYPE_CHECKING:
    from ldmz.codec.api import decode, encode

__all__ = ["DecodeParams", "EncodeParams", "decode", "encode"]


def __getattr__(name: str) -> Any:
    """Import the torch-using codec functions lazily, so `ldmz info` stays fast."""
    if name in ("encode", "decode", "encode_file", "load"):
        from ldmz.codec import api

        return getattr(api, name)
    raise AttributeError(name)

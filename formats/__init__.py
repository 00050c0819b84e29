"""The `.ldmz` container: bytes <-> LdmzFile, with numpy, msgpack and zstandard only (no torch)."""

from ldmz.formats.build import pack_latents
from ldmz.formats.container import (
    MAGIC,
    VERSION_MAJOR,
    VERSION_MINOR,
    LdmzFile,
    header_end,
    read_header,
    write_atomic,
)
from ldmz.formats.entropy import EntropyTables, TablesError, load_tables
from ldmz.formats.errors import ChecksumError, FormatError, LdmzError, VersionError
from ldmz.formats.header import (
    ChunkEntry,
    Header,
    LatentInfo,
    MelParams,
    ModelInfo,
    QuantizerInfo,
    SourceInfo,
    kbps,
)
from ldmz.formats.quantize import dequantize, quantize

__all__ = [
    "MAGIC", "VERSION_MAJOR", "VERSION_MINOR", "ChecksumError", "ChunkEntry", "EntropyTables",
    "FormatError", "TablesError", "load_tables",
    "Header", "LatentInfo", "LdmzError", "LdmzFile", "MelParams", "ModelInfo", "QuantizerInfo",
    "SourceInfo", "VersionError", "dequantize", "header_end", "kbps", "pack_latents", "quantize",
    "read_header", "write_atomic",
]

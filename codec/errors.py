"""The ldmz exception hierarchy: every error is an LdmzError and also the builtin type it means.

`formats/errors.py` holds the base and the container's errors (formats never imports codec);
this module re-exports them and adds the codec's, so ``from ldmz.codec.errors import ...`` names
every error ldmz raises on purpose. The `ldmz` command turns each into one line on stderr.
"""

from __future__ import annotations

from ldmz.formats.errors import ChecksumError, FormatError, LdmzError, VersionError

__all__ = [
    "AudioError", "AudioWarning", "ChecksumError", "ClusterError", "ConfigError", "FormatError",
    "LdmzError", "ModelError", "ParamError", "PluginError", "ToolError", "TrainError",
    "UsageError", "VersionError", "VocoderError", "WeightsHashWarning",
]


class ParamError(LdmzError, ValueError):
    """A parameter is out of range or unknown (bits, chunk length, sample rate, metric name)."""


class UsageError(ParamError):
    """Command-line options that do not go together; the `ldmz` command exits with 2."""


class ConfigError(ParamError):
    """A JSON config file is not JSON, or has unknown or mistyped keys."""


class AudioError(LdmzError, ValueError):
    """Audio that cannot be read, or samples the codec cannot take (NaN, empty, wrong shape)."""


class ModelError(LdmzError, LookupError):
    """A model that is not registered, not in the cache, or not the file's model."""


class VocoderError(LdmzError, LookupError):
    """A vocoder that is unknown, not installed, or not fit for the model."""


class PluginError(LdmzError, RuntimeError):
    """An installed plug-in failed to load or returned the wrong thing."""


class TrainError(LdmzError, ValueError):
    """A training run cannot start: no data, or a checkpoint of another model."""


class ToolError(LdmzError, RuntimeError):
    """An external program (ffmpeg, opusenc) failed."""


class ClusterError(LdmzError, RuntimeError):
    """`ldmz encode --ray` without the cluster extra installed, or no Ray cluster to reach."""


class WeightsHashWarning(UserWarning):
    """A model's weights could not be hashed: its files will record only the model id."""


class AudioWarning(UserWarning):
    """Audio was read, but not all of it as the file claims (e.g. a truncated WAV)."""

"""Whole datasets: encode a tree of audio into `.ldmz` + manifest.parquet (in-process or on Ray).

``encode_dataset`` lists the inputs (local paths or pyarrow.fs URIs), skips what a previous run
finished, reads audio in Ray tasks, encodes in an actor pool that loads the model once per actor
and writes each file atomically under the output folder; ``read_latents`` is the Ray Data reader
of the result. Ray and pyarrow come with the ``cluster`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ldmz.codec.errors import ClusterError

if TYPE_CHECKING:
    from ldmz.codec.cluster.pipeline import Summary, encode_dataset
    from ldmz.codec.cluster.reader import read_latents

__all__ = ["ClusterError", "Summary", "encode_dataset", "read_latents", "require"]


def require(module: str, what: str) -> Any:
    """Import ``module`` (ray or pyarrow), or raise one line naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ClusterError(f"{what} needs {module.split('.')[0]}: "
                           f"pip install 'ldmz[cluster]'") from None


def __getattr__(name: str) -> Any:
    """The pipeline and the reader import lazily (ray, pyarrow and torch only when used)."""
    if name in ("encode_dataset", "Summary"):
        from ldmz.codec.cluster import pipeline

        return getattr(pipeline, name)
    if name == "read_latents":
        from ldmz.codec.cluster.reader import read_latents

        return read_latents
    raise AttributeError(name)

"""Third-party vocoders and models via the entry-point groups `ldmz.vocoders`, `ldmz.models`."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from ldmz.codec.errors import PluginError

VOCODERS = "ldmz.vocoders"
MODELS = "ldmz.models"
GROUPS: tuple[str, ...] = (VOCODERS, MODELS)

# A plug-in distribution declares, e.g. in its pyproject.toml:
#   [project.entry-points."ldmz.vocoders"]
#   my-vocoder = "my_pkg.vocoder:MyVocoder"
#   [project.entry-points."ldmz.models"]
#   my-model = "my_pkg.model:load_model"


@dataclass(frozen=True)
class PluginInfo:
    """One entry point: what it names, which distribution provides it, and whether it loads."""

    name: str
    value: str
    dist: str | None
    dist_version: str | None
    path: str | None
    error: str | None = None
    group: str = ""

    @property
    def ok(self) -> bool:
        """True when the entry point loaded without an error."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (plus ``ok``)."""
        return {**asdict(self), "ok": self.ok}


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    eps = metadata.entry_points(group=group)
    seen: set[tuple[str, str]] = set()
    out = []
    for ep in eps:  # the same dist found twice on sys.path: keep the first, like import does
        key = (ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            out.append(ep)
    return sorted(out, key=lambda e: e.name)


def _dist_location(dist: metadata.Distribution | None) -> str | None:
    if dist is None:
        return None
    path = getattr(dist, "_path", None)  # PathDistribution: its .dist-info / .egg-info folder
    if path is not None:
        return str(path)
    try:
        return str(dist.locate_file(""))
    except Exception:  # noqa: BLE001 - a custom Distribution may not support it
        return None


def _module_file(ep: metadata.EntryPoint) -> str | None:
    mod = sys.modules.get(ep.module)
    return getattr(mod, "__file__", None) if mod is not None else None


def _describe(ep: metadata.EntryPoint, group: str, load: bool) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    name = version = None
    if dist is not None:
        try:
            name = dist.metadata["Name"] or dist.name
            version = dist.version
        except Exception:  # noqa: BLE001 - broken METADATA is reported, not raised
            name = name or getattr(dist, "name", None)
    error = None
    if load:
        try:
            ep.load()
        except BaseException as e:  # a plug-in may raise anything on import
            if isinstance(e, KeyboardInterrupt):
                raise
            error = f"{type(e).__name__}: {e}"
    path = _module_file(ep) or _dist_location(dist)
    return PluginInfo(name=ep.name, value=ep.value, dist=name, dist_version=version,
                      path=path, error=error, group=group)


def discover(group: str, *, load: bool = True) -> list[PluginInfo]:
    """Every entry point in ``group``, sorted by name; one that fails to load carries its error.

    With ``load=False`` nothing is imported and every ``error`` is None.
    """
    return [_describe(ep, group, load) for ep in _entry_points(group)]


def load(group: str, name: str) -> Any:
    """The object behind plug-in ``name`` in ``group`` (KeyError if none; a broken one raises)."""
    for ep in _entry_points(group):
        if ep.name == name:
            return ep.load()
    known = ", ".join(e.name for e in _entry_points(group)) or "none installed"
    raise KeyError(f"no {group} plug-in named {name!r} ({known})")


def call(group: str, name: str, *args: Any) -> Any:
    """Load plug-in ``name`` of ``group`` and call it with ``args``.

    Whatever a broken plug-in raises becomes one ``RuntimeError`` line that names the plug-in,
    its distribution and the fix.
    """
    ep = next((e for e in _entry_points(group) if e.name == name), None)
    if ep is None:
        return load(group, name)  # raises the KeyError naming what is installed
    dist = getattr(getattr(ep, "dist", None), "name", None) or "its distribution"
    try:
        return ep.load()(*args)
    except (KeyboardInterrupt, MemoryError):
        raise
    except BaseException as e:  # a plug-in may raise anything
        text = " ".join(f"{type(e).__name__}: {e}".split())
        raise PluginError(f"{group} plug-in '{name}' ({ep.value}, from {dist}) failed: {text}; "
                           f"fix it or uninstall it (pip uninstall {dist})") from e


def names(group: str) -> list[str]:
    """The names of the entry points in ``group``, without importing them."""
    return [ep.name for ep in _entry_points(group)]


__all__ = ["GROUPS", "MODELS", "VOCODERS", "PluginInfo", "call", "discover",
           "load", "names"]

"""Let GStreamer's embedded Python find the system's gi when an activated venv hides it."""

# Installed into the venv's site-packages by packaging/gstreamer/install.sh, with
# ldmz_gst_gi.pth (which imports it at start-up). When the venv's bin/ comes first on PATH (an
# activated venv), the Python that GStreamer's plug-in loader embeds takes the venv as its prefix
# and no longer sees the distribution's packages, so `import gi` fails ("pygobject
# initialization failed"). In such an embedded interpreter only (not in the venv's own python),
# this adds a last-resort finder for gi and cairo alone, from the system's package folder.

from __future__ import annotations

import importlib.machinery
import os
import sys
from types import ModuleType
from typing import Any

SYSTEM_PACKAGES = "/usr/lib/python3/dist-packages"  # install.sh writes the system's own
NAMES = ("gi", "cairo")


def embedded() -> bool:
    """Whether this interpreter runs inside another program (gst-launch, gst-plugin-scanner)."""
    try:
        exe = os.path.basename(os.path.realpath("/proc/self/exe"))
    except OSError:
        return False
    return not exe.startswith("python")


class SystemGiFinder:
    """A meta-path finder for the top-level ``gi`` and ``cairo`` packages only."""

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: ModuleType | None = None) -> Any:
        """The system's spec for gi/cairo; None for anything else."""
        if path is not None or name not in NAMES:
            return None
        return importlib.machinery.PathFinder.find_spec(name, [SYSTEM_PACKAGES])


def install() -> bool:
    """Append the finder (after every other one) when embedded; True if it was added."""
    if not embedded() or not os.path.isdir(SYSTEM_PACKAGES) or SystemGiFinder in sys.meta_path:
        return False
    sys.meta_path.append(SystemGiFinder)
    return True


install()

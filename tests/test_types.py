"""mypy over the package (config in pyproject.toml): formats/ strict, codec/ checked."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _parent() -> Path:
    """A fixed folder per checkout where ``ldmz`` links to the repository root (the package).

    Fixed, so mypy's cache beside it stays valid from one run to the next (a warm run is fast).
    """
    base = Path(tempfile.gettempdir()) / f"ldmz-mypy-{hashlib.sha1(bytes(ROOT)).hexdigest()[:12]}"
    base.mkdir(exist_ok=True)
    link = base / "ldmz"
    if not link.is_symlink():
        link.symlink_to(ROOT, target_is_directory=True)
    return base


def test_mypy() -> None:
    base = _parent()
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(base / "cache"), "--no-error-summary",
         "-p", "ldmz.formats", "-p", "ldmz.codec"],
        cwd=base, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def test_py_typed_ships() -> None:
    assert (ROOT / "py.typed").is_file()

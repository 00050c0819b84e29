"""mypy over the package (config in pyproject.toml): formats/ strict, codec/ checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy(tmp_path: Path) -> None:
    # the repository root is the package `ldmz`: give mypy a parent folder where it is named so
    (tmp_path / "ldmz").symlink_to(ROOT, target_is_directory=True)
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
         "-p", "ldmz.formats", "-p", "ldmz.codec"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def test_py_typed_ships() -> None:
    assert (ROOT / "py.typed").is_file()

"""The PyInstaller bundle's smoke test (packaging/pyinstaller/smoke.sh), when a build exists."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "build" / "frozen" / "ldmz"
SMOKE = ROOT / "packaging" / "pyinstaller" / "smoke.sh"
SOURCES = ("formats", "codec", "gui")


def _stale() -> str | None:
    """Why the bundle cannot stand for the sources (missing or older), or None."""
    exe = BUNDLE / "ldmz"
    if not (exe.is_file() and (BUNDLE / "ldmz-gui").is_file()):
        return f"no frozen build at {BUNDLE}; make one with packaging/pyinstaller/build.sh"
    built = exe.stat().st_mtime
    files = [*(p for d in SOURCES for p in (ROOT / d).rglob("*.py")),
             *(p for p in (ROOT / "codec" / "models").rglob("*") if p.is_file())]
    newer = [p for p in files if p.stat().st_mtime > built]
    if newer:
        return (f"the frozen build is older than {newer[0].relative_to(ROOT)} (and "
                f"{len(newer) - 1} more); rebuild with packaging/pyinstaller/build.sh")
    return None


STALE = _stale()


@pytest.mark.skipif(STALE is not None, reason=STALE or "")
def test_frozen_smoke() -> None:
    r = subprocess.run(["bash", str(SMOKE), str(BUNDLE)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "smoke: all steps passed" in r.stdout

"""The wheel: built from the tracked files, installed into fresh venvs, `ldmz demo`/`info` run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from ldmz.formats import MelParams, ModelInfo, SourceInfo, pack_latents

ROOT = Path(__file__).resolve().parent.parent
# the package's own folders (all tracked files ship) and the root's package files
PACKAGE_DIRS = ("codec/", "formats/", "gui/", "examples/")
ROOT_FILES = ("__init__.py", "__main__.py", "py.typed")


def _core_paths() -> set[str]:
    """Top-level names installed by the core dependencies pyproject.toml declares (no extras)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names: set[str] = set()
    for req in deps:
        dist = metadata.distribution(re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0])
        for f in dist.files or ():
            top = f.parts[0]
            if top != ".." and not top.endswith((".dist-info", ".data")) and top != "__pycache__":
                names.add(top)
    return names


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    # tracked files and new ones git does not ignore: the working tree as it would be committed
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, check=True)
    return [p for p in out.stdout.decode().split("\0") if p and (ROOT / p).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built (no isolation, no network) from a copy of the tracked working-tree files."""
    tmp = tmp_path_factory.mktemp("wheel")
    for rel in _tracked():
        (tmp / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tmp / "src" / rel)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "-w", str(tmp / "dist"), str(tmp / "src")],
                   check=True, capture_output=True)
    (whl,) = (tmp / "dist").glob("ldmz-*.whl")
    return whl


def _venv(tmp: Path, wheel: Path, deps: list[Path]) -> Path:
    """A fresh venv holding the wheel; its dependencies come from ``deps`` via a .pth file."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp)], check=True)
    py = tmp / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # a path in a .pth file joins sys.path, but the .pth files inside it (the shared venv's
    # editable-install hook) are not run: `ldmz` can only come from the wheel
    Path(site, "_deps.pth").write_text("".join(f"{d}\n" for d in deps))
    return tmp / "bin"


def _run(bin_dir: Path, *cmd: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run([str(bin_dir / cmd[0]), *cmd[1:]], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_wheel_holds_exactly_the_package_files(wheel: Path) -> None:
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if ".dist-info/" not in n}
    expected = {f"ldmz/{p}" for p in _tracked() if p.startswith(PACKAGE_DIRS) or p in ROOT_FILES}
    assert "ldmz/examples/example.flac" in expected and "ldmz/py.typed" in expected
    assert shipped == expected, (sorted(shipped - expected), sorted(expected - shipped))


def test_wheel_core_only_reads_files_and_runs_info(wheel: Path, tmp_path: Path) -> None:
    purelib = Path(sysconfig.get_path("purelib"))
    core = tmp_path / "core-deps"
    core.mkdir()
    for name in _core_paths():
        if (purelib / name).exists():
            (core / name).symlink_to(purelib / name)
    bin_dir = _venv(tmp_path / "venv", wheel, [core])
    z = np.random.default_rng(0).normal(size=(1, 8, 12, 16)).astype(np.float32)
    f = pack_latents(z, model=ModelInfo("ldmz-small"), mel=MelParams(sample_rate=16000),
                     source=SourceInfo(16000, 1, 7680, (1.0,)), bits=4, frames_per_chunk=8)
    f.save(tmp_path / "x.ldmz")
    out = _run(bin_dir, "ldmz", "info", "x.ldmz", cwd=tmp_path).stdout
    assert "ldmz-small" in out
    code = ("import sys, ldmz.formats as F; f = F.LdmzFile.load('x.ldmz'); "
            "print(f.latents().shape, F.__file__); assert 'torch' not in sys.modules")
    out = _run(bin_dir, "python", "-c", code, cwd=tmp_path).stdout
    assert "(1, 8, 12, 16)" in out and str(tmp_path / "venv") in out
    version = _run(bin_dir, "python", "-m", "ldmz", "--version", cwd=tmp_path).stdout
    assert version.startswith("ldmz ")
    r = subprocess.run([str(bin_dir / "python"), "-c", "import torch"], capture_output=True)
    assert r.returncode != 0  # the core venv really lacks the codec's dependencies


def test_wheel_full_runs_demo_and_info(wheel: Path, tmp_path: Path) -> None:
    bin_dir = _venv(tmp_path / "venv", wheel, [Path(sysconfig.get_path("purelib"))])
    out = _run(bin_dir, "ldmz", "demo", "--vocoder", "griffinlim", "--out", "d",
               cwd=tmp_path).stdout
    assert "example.flac" in out and "kbps" in out and str(tmp_path / "venv") in out
    out = _run(bin_dir, "ldmz", "info", "d/example.ldmz", cwd=tmp_path).stdout
    assert "ldmz-small" in out

"""packaging/ desktop integration: .desktop, shared-mime-info, file(1) magic, icon, installer."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ldmz.formats import MelParams, ModelInfo, SourceInfo, pack_latents

PKG = Path(__file__).resolve().parent.parent / "packaging"


def _need(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} not installed")
    return exe


def _ldmz(path: Path) -> Path:
    z = np.random.default_rng(0).normal(size=(1, 8, 12, 16)).astype(np.float32)
    mel = MelParams(sample_rate=16000, hop_length=160)
    f = pack_latents(z, model=ModelInfo("ldmz-small"), mel=mel,
                     source=SourceInfo(16000, 1, 7680, (1.0,)), bits=4, frames_per_chunk=8)
    f.save(path)
    assert path.read_bytes()[:6] == b"LDMZ\x01\x00"
    return path


def test_desktop_entry_validates() -> None:
    exe = _need("desktop-file-validate")
    r = subprocess.run([exe, str(PKG / "ldmz-gui.desktop")], capture_output=True, text=True)
    assert r.returncode == 0 and "error" not in r.stdout.lower(), r.stdout + r.stderr
    text = (PKG / "ldmz-gui.desktop").read_text()
    # one file per launch (ldmz-gui opens one), the freedesktop audio type
    assert "MimeType=audio/x-ldmz;" in text and "Exec=ldmz-gui %f\n" in text


def test_mime_xml_is_well_formed() -> None:
    exe = _need("xmllint")
    r = subprocess.run([exe, "--noout", str(PKG / "ldmz-mime.xml"), str(PKG / "ldmz.svg")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = (PKG / "ldmz-mime.xml").read_text()
    assert 'mime-type type="audio/x-ldmz"' in text and 'pattern="*.ldmz"' in text
    assert '<alias type="application/x-ldmz"/>' in text
    assert 'value="LDMZ"' in text


def test_file_magic_names_format_and_version(tmp_path: Path) -> None:
    exe = _need("file")
    f = _ldmz(tmp_path / "x.ldmz")
    r = subprocess.run([exe, "-m", str(PKG / "ldmz.magic"), str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "ldmz compressed audio latents, version 1.0" in r.stdout
    r = subprocess.run([exe, "-b", "--mime-type", "-m", str(PKG / "ldmz.magic"), str(f)],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "audio/x-ldmz"


def test_icon_png_matches_svg() -> None:
    png = (PKG / "ldmz.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == int.from_bytes(png[20:24], "big") == 256
    assert "<svg" in (PKG / "ldmz.svg").read_text()


def test_install_script_is_idempotent(tmp_path: Path) -> None:
    _need("sh")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "ldmz-gui").write_text("#!/bin/sh\n")
    (venv / "bin" / "ldmz-gui").chmod(0o755)
    env = {**os.environ, "HOME": str(tmp_path), "LDMZ_VENV": str(venv),
           "PATH": "/usr/bin:/bin"}  # the venv is not on PATH: the entry must not need it
    env.pop("XDG_DATA_HOME", None)
    for _ in range(2):
        subprocess.run(["sh", str(PKG / "install-desktop.sh")], env=env, check=True,
                       capture_output=True)
    data = tmp_path / ".local/share"
    for rel in ("applications/ldmz-gui.desktop", "mime/packages/ldmz-mime.xml",
                "icons/hicolor/scalable/apps/ldmz.svg", "icons/hicolor/256x256/apps/ldmz.png"):
        assert (data / rel).is_file(), rel
    magic = (tmp_path / ".magic").read_text()
    assert magic.count("# >>> ldmz >>>") == 1 and magic.count("\tstring\tLDMZ\t") == 1
    if shutil.which("update-mime-database"):
        assert (data / "mime/audio/x-ldmz.xml").is_file()
        aliases = (data / "mime/aliases").read_text()
        assert "application/x-ldmz audio/x-ldmz" in aliases
    entry = (data / "applications/ldmz-gui.desktop").read_text()
    gui = venv.resolve() / "bin" / "ldmz-gui"
    assert f"\nExec={gui} %f\n" in entry and f"\nTryExec={gui}\n" in entry
    if shutil.which("desktop-file-validate"):
        r = subprocess.run(["desktop-file-validate", str(data / "applications/ldmz-gui.desktop")],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "error" not in r.stdout.lower(), r.stdout
    if shutil.which("file"):
        f = _ldmz(tmp_path / "y.ldmz")
        out = subprocess.run(["file", str(f)], env=env, capture_output=True, text=True).stdout
        assert "version 1.0" in out
    subprocess.run(["sh", str(PKG / "install-desktop.sh"), "--uninstall"], env=env, check=True,
                   capture_output=True)
    assert not (data / "applications/ldmz-gui.desktop").exists()
    assert not (tmp_path / ".magic").exists()

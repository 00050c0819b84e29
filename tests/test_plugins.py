"""Vocoder/model plug-ins via entry points, with a tiny plug-in dist installed in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ldmz.codec import plugins
from ldmz.codec.cli import main

DIST = "ldmz-demo-plugin"
PKG = "ldmz_demo_plugin_x"


@pytest.fixture()
def site(tmp_path: Path, dist_writer) -> Path:  # noqa: ANN001
    """A site dir with a hand-made installed dist: one good entry per group, one broken vocoder."""
    return dist_writer(tmp_path / "site", DIST, "0.3.1", PKG, {
        "__init__.py": '"""Demo plug-in."""\n',
        "voc.py": "class DemoVocoder:\n    sample_rate = 16000\n",
        "model.py": "def load_model():\n    return 'demo-model'\n",
        "broken.py": "raise RuntimeError('boom: demo plug-in is broken')\n",
    }, "[ldmz.vocoders]\n"
       f"demo-voc = {PKG}.voc:DemoVocoder\n"
       f"demo-broken = {PKG}.broken:Nope\n"
       "\n[ldmz.models]\n"
       f"demo-model = {PKG}.model:load_model\n")


@pytest.fixture()
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(site))
    yield site
    for m in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
        del sys.modules[m]


def test_discover_reports_good_and_broken(installed: Path) -> None:
    voc = {p.name: p for p in plugins.discover(plugins.VOCODERS) if p.dist == DIST}
    assert set(voc) == {"demo-voc", "demo-broken"}
    good, bad = voc["demo-voc"], voc["demo-broken"]
    assert good.ok and good.dist_version == "0.3.1" and good.value == f"{PKG}.voc:DemoVocoder"
    assert good.path and Path(good.path).is_relative_to(installed)
    assert not bad.ok and "RuntimeError" in bad.error and "boom" in bad.error
    assert bad.path and Path(bad.path).is_relative_to(installed)
    models = [p for p in plugins.discover(plugins.MODELS) if p.dist == DIST]
    assert [(p.name, p.ok) for p in models] == [("demo-model", True)]
    assert plugins.load(plugins.MODELS, "demo-model")() == "demo-model"
    with pytest.raises(KeyError):
        plugins.load(plugins.MODELS, "no-such-model")


def test_discover_without_loading(installed: Path) -> None:
    voc = [p for p in plugins.discover(plugins.VOCODERS, load=False) if p.dist == DIST]
    assert len(voc) == 2 and all(p.ok for p in voc)
    assert f"{PKG}.broken" not in sys.modules


def test_cli_lists_plugins(installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "demo-voc" in out and "demo-model" in out and DIST in out
    assert "BROKEN" in out and "boom" in out
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = {p["name"]: p for p in data["ldmz.vocoders"]}
    assert names["demo-broken"]["ok"] is False and names["demo-voc"]["dist"] == DIST
    assert [p["name"] for p in data["ldmz.models"] if p["dist"] == DIST] == ["demo-model"]


def test_cli_subprocess(site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    r = subprocess.run([sys.executable, "-c",
                        "import sys; from ldmz.codec.cli import main; sys.exit(main(['plugins']))"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "demo-voc" in r.stdout and "demo-broken" in r.stdout and "demo-model" in r.stdout
    assert "RuntimeError: boom" in r.stdout

"""Run the README's Python examples, so the documentation stays true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_examples() -> None:
    assert len(_blocks()) >= 2


@pytest.mark.skipif(not (ROOT / "codec/models/ldmz-small/config.json").exists(),
                    reason="the embedded model ldmz-small is not installed")
def test_readme_examples_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    ns: dict = {}
    for block in _blocks():
        code = block.replace("/tmp/example.ldmz", str(tmp_path / "example.ldmz")).replace(
            "/tmp/latents", str(tmp_path / "latents"))
        exec(compile(code, "README.md", "exec"), ns)  # our own documentation
    assert ns["y"].shape == ns["audio"].shape
    assert ns["z"].shape[0] == ns["audio"].shape[0]
    assert ns["first"].shape[1] == ns["z"].shape[1]

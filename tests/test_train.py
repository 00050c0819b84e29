"""`ldmz train`: a tiny PatchVAE trains (loss falls), resumes, honours a clock budget, exports."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

SR = 22050
TINY = {"width": 8, "enc_blocks": 1, "dec_blocks": 1, "refine_width": 4}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory, signals: type) -> Path:
    """Two seconds of chirp to train on, one of sine to validate on."""
    return signals.manifest(tmp_path_factory.mktemp("train_data"), SR, 2.0)


def _cfg(manifest: Path, out: Path, **kw: object):  # noqa: ANN202
    from ldmz.codec.train.trainer import TrainConfig

    base = dict(manifest=str(manifest), out=str(out), steps=40, batch=4, frames=64, lr=3e-3,
                warmup=1, log_every=10, val_every=20, ckpt_every=20, threads=1, bits_min=2,
                bits_max=2, clean_fraction=0.0, gain_aug_db=0.0, model=TINY)
    return TrainConfig(**{**base, **kw})


def _log(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "train.log").read_text().splitlines()]


def test_trains_resumes_and_exports(manifest: Path, tmp_path: Path) -> None:
    from ldmz.codec.models import load_model
    from ldmz.codec.train.trainer import train

    out = train(_cfg(manifest, tmp_path / "run", steps=20), log=lambda s: None)
    first = _log(out)
    assert [r["step"] for r in first] == [10, 20]
    out = train(_cfg(manifest, tmp_path / "run", steps=40), log=lambda s: None)  # resumes
    recs = _log(out)
    assert [r["step"] for r in recs] == [10, 20, 30, 40]
    assert recs[-1]["loss"] < recs[0]["loss"]
    assert {"l1_clean", "l1_2bit"} <= set(recs[-1])
    for name in ("loss.png", "last.pt", "model/config.json", "model/ldmz.json"):
        assert (out / name).exists(), name
    m = load_model(str(out / "model"), "cpu")
    assert type(m.autoencoder).__name__ == "PatchVAEAdapter" and m.info.revision == "step-40"
    import torch

    mel = torch.full((1, 1, 64, 80), -5.0)
    assert m.decode(m.encode(mel)).shape == mel.shape


def test_clock_budget_stops_and_exports(manifest: Path, tmp_path: Path) -> None:
    from ldmz.codec.train.trainer import train

    cfg = _cfg(manifest, tmp_path / "timed", steps=10**6, time_budget_s=3.0)
    out = train(cfg, log=lambda s: None)
    recs = _log(out)
    assert 0 < recs[-1]["step"] < 10**6
    assert "l1_clean" in recs[-1]  # the final step is validated and exported
    assert (out / "model" / "diffusion_pytorch_model.safetensors").exists()


def test_latent_scale_is_pinned(manifest: Path, tmp_path: Path) -> None:
    """With the RMS pin the latents stay near unit scale (they drifted to ~1e3 without it)."""
    import torch

    from ldmz.codec.models import load_model
    from ldmz.codec.train.trainer import train

    out = train(_cfg(manifest, tmp_path / "pin", steps=40), log=lambda s: None)
    m = load_model(str(out / "model"), "cpu")
    rng = np.random.default_rng(0)
    mel = torch.from_numpy(rng.uniform(-11, 0, (1, 1, 64, 80)).astype(np.float32))
    with torch.no_grad():
        rms = float(m.encode(mel).pow(2).mean().sqrt())
    assert 0.2 < rms < 5.0


def test_unknown_config_key_is_refused(tmp_path: Path) -> None:
    from ldmz.codec.train.trainer import TrainConfig

    p = tmp_path / "c.json"
    p.write_text(json.dumps({"stepz": 3}))
    with pytest.raises(ValueError, match="stepz"):
        TrainConfig.load(str(p))
    assert replace(TrainConfig(), steps=3).steps == 3


def test_rate_distortion_mode_lowers_the_rate(manifest: Path, tmp_path: Path) -> None:
    """rd_lambda > 0: straight-through rounding on the codec's grid, the rate model's bits in
    the loss and the log, its state in the checkpoint; a large lambda makes latents cheaper."""
    import torch

    from ldmz.codec.train.trainer import train

    out = train(_cfg(manifest, tmp_path / "rd", steps=40, rd_lambda=2.0, rd_step_min=0.5,
                     rd_step_max=1.0), log=lambda s: None)
    recs = _log(out)
    assert all("bits_per_value" in r for r in recs)
    assert recs[-1]["bits_per_value"] < recs[0]["bits_per_value"]
    assert {"l1_step1.3", "bits_step0.6"} <= set(recs[-1])
    state = torch.load(out / "last.pt", weights_only=True)
    assert set(state["extra"]["rate"]) == {"mean", "log_scale", "alpha"}  # loop.run's "extra"

"""Decoder-only fine-tuning: frozen encoder, falling loss, exact resume, compatible latents."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

SR = 16000
FAST = {"steps": 30, "batch": 2, "frames": 128, "lr": 3e-3, "lr_min": 3e-3, "warmup": 1,
        "log_every": 1, "val_every": 15, "val_batch": 2, "ckpt_every": 15, "threads": 1,
        "bf16": False, "gain_aug_db": 0.0, "clean_fraction": 0.0, "bits_min": 6, "bits_max": 8,
        "device": "cpu"}


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory, signals: type) -> Path:
    """One second of training audio (a fixed batch: crops are longer than the file), one of val."""
    return signals.manifest(tmp_path_factory.mktemp("ft_data"), SR, 1.0)


def _cfg(base: Path | str, manifest: Path, out: Path, **kw: object):  # noqa: ANN202
    from ldmz.codec.train.finetune import FinetuneConfig

    return FinetuneConfig(base=str(base), manifest=str(manifest), out=str(out), **{**FAST, **kw})


@pytest.fixture(scope="module")
def run(tiny_audioldm: Path, manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 steps of fine-tuning the tiny AutoencoderKL's decoder."""
    from ldmz.codec.train.finetune import finetune

    return finetune(_cfg(tiny_audioldm, manifest, tmp_path_factory.mktemp("ft") / "run"),
                    log=lambda s: None)


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "diffusion_pytorch_model.safetensors"))


def _losses(run: Path) -> list[float]:
    return [json.loads(ln)["loss"] for ln in (run / "train.log").read_text().splitlines()]


def test_encoder_frozen_decoder_trained(run: Path, tiny_audioldm: Path) -> None:
    old, new = _weights(tiny_audioldm / "vae"), _weights(run / "model")
    assert old.keys() == new.keys()
    frozen = [k for k in old if k.startswith(("encoder.", "quant_conv."))]
    trained = [k for k in old if k.startswith(("decoder.", "post_quant_conv."))]
    assert frozen and trained and len(frozen) + len(trained) == len(old)
    assert all(old[k].equal(new[k]) for k in frozen)
    changed = [k for k in trained if not old[k].equal(new[k])]
    assert len(changed) > len(trained) // 2
    assert any(k.startswith("post_quant_conv.") for k in changed)


def test_loss_goes_down(run: Path) -> None:
    losses = _losses(run)
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    base = json.loads((run / "base.json").read_text())
    last = json.loads((run / "train.log").read_text().splitlines()[-1])
    assert last["l1_clean"] < base["l1_clean"] and last["l1_4bit"] < base["l1_4bit"]
    assert (run / "loss.png").stat().st_size > 0


def test_resume_is_exact(run: Path, tiny_audioldm: Path, manifest: Path, tmp_path: Path) -> None:
    from ldmz.codec.train.finetune import finetune

    cfg = _cfg(tiny_audioldm, manifest, tmp_path / "run")

    def stop_at_17(s: str) -> None:
        if s.startswith("{") and json.loads(s).get("step") == 17:
            raise _Stop

    with pytest.raises(_Stop):
        finetune(cfg, log=stop_at_17)
    said: list[str] = []
    finetune(cfg, log=said.append)
    assert said[0] == "resumed at step 15"
    assert _losses(tmp_path / "run") == _losses(run)  # records past the checkpoint replaced
    assert (tmp_path / "run" / "model" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        (run / "model" / "diffusion_pytorch_model.safetensors").read_bytes()


def test_resume_refuses_another_base(run: Path, tiny_audioldm_other: Path,
                                     manifest: Path) -> None:
    from ldmz.codec.train.finetune import FinetuneError, finetune

    with pytest.raises(FinetuneError, match="pass another --out"):
        finetune(_cfg(tiny_audioldm_other, manifest, run), log=lambda s: None)


def test_latents_compatible_both_ways(run: Path, tiny_audioldm: Path, signals: type) -> None:
    from ldmz.codec import DecodeParams, EncodeParams, decode, encode
    from ldmz.codec.models import load_model, weights_hash

    ft_dir = run / "model"
    base, ft = load_model(str(tiny_audioldm), "cpu"), load_model(str(ft_dir), "cpu")
    meta = json.loads((ft_dir / "ldmz.json").read_text())
    assert meta["encoder_of"]["id"] == base.info.id
    assert meta["encoder_of"]["weights_sha256"] == base.info.weights_sha256
    assert meta["decoder"] == meta["revision"] and meta["decoder"].endswith("step-30")
    assert (ft.info.id, ft.info.weights_sha256, ft.info.scaling_factor) == (
        base.info.id, base.info.weights_sha256, base.info.scaling_factor)
    assert base.info.decoder_sha256 == ""
    assert ft.info.decoder_sha256 == weights_hash(ft_dir) != base.info.weights_sha256
    assert (ft.mel, ft.vocoder) == (base.mel, base.vocoder)
    assert type(ft.autoencoder) is type(base.autoencoder)

    x = signals.chirp(1.0, SR, seed=3)
    fb = encode(x, SR, EncodeParams(model=str(tiny_audioldm), device="cpu"))
    ff = encode(x, SR, EncodeParams(model=str(ft_dir), device="cpu"))
    np.testing.assert_array_equal(fb.latents(), ff.latents())
    assert ff.header.model == replace(fb.header.model, decoder_sha256=ft.info.decoder_sha256)

    def dec(f, model: str = "") -> np.ndarray:  # noqa: ANN001
        return decode(f, DecodeParams(model=model, device="cpu"))[0]

    by_base, by_ft = dec(fb, str(tiny_audioldm)), dec(fb, str(ft_dir))  # either decoder
    assert by_base.shape == by_ft.shape == (1, len(x))
    assert np.isfinite(by_ft).all() and not np.allclose(by_base, by_ft, atol=1e-4)
    # its header names the base's weights: the base folder decodes it (a file names no path)
    np.testing.assert_allclose(dec(ff, str(tiny_audioldm)), by_base, atol=1e-6)
    np.testing.assert_allclose(dec(ff, str(ft_dir)), by_ft, atol=1e-6)


def test_patchvae_embedded(manifest: Path, tmp_path: Path) -> None:
    from ldmz.codec.models import EMBEDDED_DIR, load_model
    from ldmz.codec.train.finetune import finetune

    out = finetune(_cfg("ldmz-small", manifest, tmp_path / "run", steps=4, ckpt_every=4,
                        frames=64), log=lambda s: None)
    old, new = _weights(EMBEDDED_DIR / "ldmz-small"), _weights(out / "model")
    for k in old:
        assert old[k].equal(new[k]) == k.startswith(("proj_in.", "enc.")), k
    base, ft = load_model("ldmz-small", "cpu"), load_model(str(out / "model"), "cpu")
    assert type(ft.autoencoder).__name__ == "PatchVAEAdapter"
    assert ft.mel == base.mel and ft.vocoder == base.vocoder
    assert replace(ft.info, decoder_sha256="") == base.info and ft.info.decoder_sha256
    saved = json.loads((out / "model" / "ldmz.json").read_text())
    assert saved["mel"] == asdict(base.mel)


def test_cli(tiny_audioldm: Path, manifest: Path, tmp_path: Path,
             capsys: pytest.CaptureFixture[str]) -> None:
    from ldmz.codec.cli import main

    assert main(["train", "--finetune-decoder", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--finetune-decoder" in err and "no-such-model" in err
    assert main(["train", "--finetune-decoder", str(tiny_audioldm),
                 "--data", str(tmp_path / "none.csv")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.csv" in err and "--data" in err
    cfg = tmp_path / "ft.json"
    cfg.write_text(json.dumps({**FAST, "nope": 1}))
    assert main(["train", "--finetune-decoder", str(tiny_audioldm), "--config", str(cfg)]) == 1
    assert "nope" in capsys.readouterr().err
    cfg.write_text(json.dumps(FAST))
    assert main(["train", "--finetune-decoder", str(tiny_audioldm), "--config", str(cfg),
                 "--data", str(manifest), "--steps", "2", "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r" / "model")
    assert (tmp_path / "r" / "model" / "ldmz.json").exists()

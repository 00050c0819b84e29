"""Vocoders: weight folding, receptive fields, the mel adapter, Griffin-Lim, precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ldmz.codec.dsp.frontend import log_mel_np
from ldmz.codec.models import AUDIOLDM_MEL, load_model, patchvae_fields
from ldmz.codec.vocoders import (
    UNIVERSAL_MEL,
    MelAdapter,
    VocoderError,
    adapt_mel,
    fold_weight_norm,
    griffin_lim,
    hifigan_receptive_field,
    load_vocoder,
)


def test_fold_weight_norm_matches_torch() -> None:
    from torch.nn.utils.parametrizations import weight_norm

    torch.manual_seed(0)
    conv = weight_norm(torch.nn.Conv1d(4, 6, 5))
    p = conv.parametrizations.weight
    state = {"c.weight_g": p.original0.detach(), "c.weight_v": p.original1.detach(),
             "c.bias": conv.bias.detach()}
    folded = fold_weight_norm(state)
    assert set(folded) == {"c.weight", "c.bias"}
    torch.testing.assert_close(folded["c.weight"], conv.weight.detach())


def _radius(net: torch.nn.Module, n_in: int, hop: int) -> float:
    x = torch.randn(40, n_in, dtype=torch.float64)
    y = x.clone()
    y[20] += 1.0
    with torch.no_grad():
        d = (net(x) - net(y)).abs()
    idx = torch.nonzero(d > 0).flatten()
    return max(20 - idx.min().item() / hop, (idx.max().item() + 1) / hop - 21)


@pytest.mark.parametrize("rates,kernels", [([5, 4, 8], [10, 8, 16]), ([8, 8, 2, 2],
                                                                       [16, 16, 4, 4])])
def test_hifigan_receptive_field_is_an_upper_bound(rates: list[int], kernels: list[int]) -> None:
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    cfg = SpeechT5HifiGanConfig(model_in_dim=8, upsample_initial_channel=16,
                                upsample_rates=rates, upsample_kernel_sizes=kernels,
                                resblock_kernel_sizes=[3, 11],
                                resblock_dilation_sizes=[[1, 3, 5]] * 2)
    torch.manual_seed(0)
    net = SpeechT5HifiGan(cfg).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.3)
    assert _radius(net, 8, int(np.prod(rates))) <= hifigan_receptive_field(cfg)


def test_patchvae_receptive_fields_are_upper_bounds(tiny_patchvae: Path) -> None:
    model = load_model(str(tiny_patchvae), "cpu")
    enc_rf, dec_rf = patchvae_fields(model.vae.config)
    assert (model.geometry.encoder_rf, model.geometry.decoder_rf) == (enc_rf, dec_rf)
    z = torch.randn(1, 8, 64, 20)
    z2 = z.clone()
    z2[:, :, 32] += 1.0
    with torch.no_grad():
        d = (model.decode(z) - model.decode(z2)).abs().amax(dim=(0, 1, 3))
    idx = torch.nonzero(d > 0).flatten()
    assert max(32 * 4 - idx.min().item(), idx.max().item() - 32 * 4 - 3) <= dec_rf * 4
    m = torch.randn(1, 1, 256, 80)
    m2 = m.clone()
    m2[:, :, 128] += 1.0
    with torch.no_grad():
        d = (model.encode(m) - model.encode(m2)).abs().amax(dim=(0, 1, 3))
    idx = torch.nonzero(d > 0).flatten()
    assert max(32 - idx.min().item(), idx.max().item() - 32) <= enc_rf


def test_mel_adapter_in_blocks_equals_one_call() -> None:
    rng = np.random.default_rng(0)
    m = rng.normal(-6, 2, (103, 2, 64)).astype(np.float32)
    whole = np.stack([adapt_mel(m[:, c], AUDIOLDM_MEL, UNIVERSAL_MEL) for c in range(2)], 1)
    ad = MelAdapter(AUDIOLDM_MEL, UNIVERSAL_MEL, len(m))
    parts, pos = [], 0
    for n in (1, 7, 50, 0, 45):
        parts.append(ad(m[pos:pos + n]))
        pos += n
    parts.append(ad(m[:0], last=True))
    got = np.concatenate(parts)
    assert got.shape == whole.shape == (ad.n_dst, 2, 80)
    np.testing.assert_allclose(got, whole, atol=1e-4)


def test_mel_adapter_quality_on_a_chirp(signals, record_property) -> None:  # noqa: ANN001
    import librosa

    x16 = signals.chirp(2.0, 16000)
    x22 = librosa.resample(x16, orig_sr=16000, target_sr=22050, res_type="soxr_hq")
    src = log_mel_np(x16, AUDIOLDM_MEL)
    ref = log_mel_np(x22, UNIVERSAL_MEL)
    got = adapt_mel(src, AUDIOLDM_MEL, UNIVERSAL_MEL)
    n = min(len(got), len(ref))
    assert abs(len(got) - len(ref)) <= 1
    loud = ref[:n] > np.log(1e-3)  # where there is signal
    err = float(np.abs(got[:n] - ref[:n])[loud].mean())
    record_property("adapter_log_mel_l1_on_signal", err)
    print(f"\nmel adapter 16k/64 -> 22.05k/80 on a chirp: log-mel L1 {err:.3f} where loud")
    assert err < 0.5


def test_griffin_lim_length_and_pitch(signals) -> None:  # noqa: ANN001
    x = signals.sine(0.5, 22050, 1000.0)
    m = log_mel_np(x, UNIVERSAL_MEL)
    y = griffin_lim(m, UNIVERSAL_MEL, n_iter=8)
    assert len(y) >= len(m) * 256
    spec = np.abs(np.fft.rfft(y[: len(x)] * np.hanning(len(x))))
    assert abs(np.argmax(spec) * 22050 / len(x) - 1000) < 40


def test_vocoder_precision_and_errors(tiny_audioldm: Path) -> None:
    model = load_model(str(tiny_audioldm), "cpu")
    m = np.random.default_rng(1).normal(-5, 2, (40, 64)).astype(np.float32)
    fp32 = load_vocoder("hifigan", model)(m)
    bf16 = load_vocoder("hifigan", model, precision="bf16")(m)
    assert fp32.shape == bf16.shape and len(fp32) >= 40 * 160
    assert np.abs(fp32 - bf16).max() < 0.1 * max(1e-3, float(np.abs(fp32).max()))
    batch = load_vocoder("hifigan", model)(np.stack([m, m]))
    assert batch.shape == (2, len(fp32))
    with pytest.raises(VocoderError, match="unknown vocoder"):
        load_vocoder("wavenet", model)
    with pytest.raises(ValueError, match="precision"):
        load_vocoder("hifigan", model, precision="fp8")


@pytest.mark.parametrize("measured,native,want", [(False, True, "fp32"), (True, False, "fp32"),
                                                  (True, True, "bf16")])
def test_precision_auto(measured: bool, native: bool, want: str,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    from ldmz.codec import vocoders

    monkeypatch.setattr(vocoders, "AUTO_BF16_MEASURED_OK", measured)
    monkeypatch.setattr(vocoders, "native_bf16", lambda device="cpu": native)
    assert vocoders.resolve_precision("auto") == want
    assert vocoders.resolve_precision("fp32") == "fp32"
    assert vocoders.resolve_precision("bf16") == "bf16"
    with vocoders.autocast("auto"):
        assert torch.is_autocast_enabled("cpu") == (want == "bf16")


@pytest.mark.parametrize("kernels", [(8, 4), (7, 5)])  # (7, 5): odd k - rate, longer output
def test_own_hifigan_equals_speecht5_hifigan(kernels: tuple[int, int]) -> None:
    """codec.models.hifigan (no transformers at decode) computes what SpeechT5HifiGan does, in
    one tile per stage and in many (each tile from its input slice with the halo it needs:
    a halo one sample short changes samples far beyond float rounding)."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    from ldmz.codec.models.hifigan import TILE_FLOATS, HifiGan, HifiGanConfig

    kw = dict(model_in_dim=8, upsample_initial_channel=16, upsample_rates=(4, 2),
              upsample_kernel_sizes=kernels, resblock_kernel_sizes=(3, 7),
              resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)))
    torch.manual_seed(0)
    ref = SpeechT5HifiGan(SpeechT5HifiGanConfig(**kw, normalize_before=False)).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.3)
    ours = HifiGan(HifiGanConfig(**kw)).eval()
    missing, unexpected = ours.load_state_dict(ref.state_dict(), strict=False)
    assert not missing and set(unexpected) == {"mean", "scale"}
    m = torch.randn(2, 30, 8)
    with torch.inference_mode():
        want = ref(m)
        for tile in (TILE_FLOATS, 200, 1):  # one tile; ~10-50 per stage; one sample each
            ours.tile = tile
            torch.testing.assert_close(ours(m), want)
    assert hifigan_receptive_field(ours.config) == hifigan_receptive_field(ref.config)


def test_hifigan_stages_run_in_tiles() -> None:
    """No residual block sees a whole long window: each stage's blocks run on tiles of 1-2x
    ``tile`` floats plus their halo (what bounds the generator's activation memory), and the
    caller's ``release`` runs before each stage cut into tiles."""
    from ldmz.codec.models.hifigan import HifiGan, HifiGanConfig

    cfg = HifiGanConfig(model_in_dim=8, upsample_initial_channel=16, upsample_rates=(4, 4),
                        upsample_kernel_sizes=(8, 8), resblock_kernel_sizes=(3, 5),
                        resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)))
    net = HifiGan(cfg, tile=2048).eval()
    seen: list[int] = []
    for b in net.resblocks:
        b.register_forward_hook(lambda mod, inp, out: seen.append(inp[0][0].numel()))
    net.release = lambda: seen.append(-1)  # the caller's hook: before each tiled stage
    with torch.inference_mode():
        y = net(torch.randn(1, 400, 8))
        assert y.shape == (1, 400 * 16)
        assert seen[0] == -1 and seen.count(-1) == 2 and seen[seen.index(-1, 1) - 1] > 0
        n = len(seen)
        net(torch.randn(1, 30, 8))  # short: one tile per stage, nothing to hand back
        assert len(seen) > n and -1 not in seen[n:]
    seen = [n for n in seen[:n] if n > 0]
    # tiles of 1-2x ``tile`` floats, plus the widest block's radius (kernel 5: 2 x (1 + 3 +
    # 5 + 3) = 24 samples) and the upsampler's reach (8) each side, at most 8 channels
    assert len(seen) > 20 and max(seen) <= 2 * 2048 + 8 * 2 * (24 + 8)
    assert 4 * max(seen) < 4 * 400 * 16  # the whole last stage (4 channels) is far larger


def test_hifigan_window_bounds_activations() -> None:
    from ldmz.codec.models.hifigan import HifiGanConfig
    from ldmz.codec.vocoders import HIFIGAN_ACTIVATION_BYTES, HIFIGAN_LIVE_TENSORS, hifigan_window

    universal = HifiGanConfig()  # V1: 512 channels, x8 x8 x2 x2
    w = hifigan_window(universal, 19)
    widest = 32 * 256  # every stage of V1 holds 8192 floats per frame
    per_call = HIFIGAN_LIVE_TENSORS * widest * 4
    assert (w + 38) * per_call <= HIFIGAN_ACTIVATION_BYTES < (w + 39) * per_call
    assert w == 90  # calls of 128 frames: decoded samples as before the tiles (bit-identical)
    assert hifigan_window(universal, 0, 4 << 30) > 1024 and hifigan_window(universal, 0, 1) == 32


def test_griffin_lim_is_librosas_without_librosa(signals, tmp_path: Path) -> None:  # noqa: ANN001
    """The numpy Griffin-Lim gives librosa.griffinlim's samples, and decoding with it does not
    import librosa (numba and scipy: ~180 MB)."""
    import subprocess
    import sys

    import librosa

    from ldmz.codec.vocoders import mel_to_linear

    x = 0.5 * signals.chirp(1.0, 22050)
    m = log_mel_np(x, UNIVERSAL_MEL)
    pad = (UNIVERSAL_MEL.n_fft - UNIVERSAL_MEL.hop_length) // 2
    ref = librosa.griffinlim(mel_to_linear(m, UNIVERSAL_MEL), n_iter=8, hop_length=256,
                             win_length=1024, n_fft=1024, center=False, momentum=0.99,
                             init="random", random_state=0)[pad:]
    got = griffin_lim(m, UNIVERSAL_MEL, n_iter=8)
    assert got.shape == ref.shape
    assert np.sqrt(np.mean((got - ref) ** 2) / np.mean(ref ** 2)) < 1e-4
    code = ("import sys, numpy as np\n"
            "from ldmz.codec.vocoders import UNIVERSAL_MEL, griffin_lim\n"
            "griffin_lim(np.full((20, 80), -5, np.float32), UNIVERSAL_MEL, 2)\n"
            "print(sorted(m for m in ('librosa', 'numba', 'scipy') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_universal_loads_without_transformers() -> None:
    import subprocess
    import sys

    code = ("import sys\n"
            "from ldmz.codec.vocoders import load_vocoder, trim_heap\n"
            "v = load_vocoder('universal')\n"
            "print(v.name, v.window, 'transformers' in sys.modules, v.net.release is trim_heap)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # its stages hand their freed memory back before the next (glibc's malloc_trim)
    assert r.stdout.split() == ["universal", "90", "False", "True"], r.stdout

"""Sensitivity-weighted steps: the measured decoder sensitivity and the step allocation."""

from __future__ import annotations

import numpy as np
import pytest

from ldmz.codec.train.rdsteps import ZERO_STEP, allocate_steps, decoder_sensitivity


class _Linear:
    """A decoder ``y = sum_c gain[c, f] * z[c, :, f]`` spread over 4 mel bins per latent bin."""

    def __init__(self, gain: np.ndarray) -> None:
        import torch

        self.gain = torch.from_numpy(gain.astype(np.float32))

    def encode(self, mel):  # noqa: ANN001, ANN202 - test double of LoadedModel
        import torch

        b, _, t, m = mel.shape
        return torch.randn(b, self.gain.shape[0], t // 4, m // 4,
                           generator=torch.Generator().manual_seed(1))

    def decode(self, z):  # noqa: ANN001, ANN202
        y = (z * self.gain[None, :, None, :]).sum(1, keepdim=True)
        return y.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)


def test_sensitivity_is_the_squared_jacobian_norm() -> None:
    """Each latent value moves 16 mel values by ``gain``: the column norm is 16 gain^2."""
    import torch

    gain = np.ones((3, 5))
    gain[1] = 3.0
    gain[2, 4] = 0.5
    w = decoder_sensitivity(_Linear(gain), torch.zeros(4, 1, 32, 20), probes=16)
    np.testing.assert_allclose(w, 16 * gain ** 2, rtol=0.15)


def test_sensitivity_of_a_patchvae_follows_its_output_scale(tiny_patchvae) -> None:  # noqa: ANN001
    """Scaling the decoder's output (mel_std) by 3 scales every sensitivity by 9."""
    import torch

    from ldmz.codec.models import load_model

    m = load_model(str(tiny_patchvae), "cpu")
    x = torch.randn(2, 1, 32, 80) - 5
    w1 = decoder_sensitivity(m, x, probes=8, seed=3)
    vae = m.autoencoder.module
    std = vae.config.mel_std
    with torch.no_grad():
        z = m.encode(x)  # the latents as before (the encoder normalises by mel_std too)
    object.__setattr__(vae.config, "mel_std", std * 3)
    try:
        w3 = decoder_sensitivity(_Fixed(m, z), x, probes=8, seed=3)
    finally:
        object.__setattr__(vae.config, "mel_std", std)
    np.testing.assert_allclose(w3, 9 * w1, rtol=1e-4)
    assert w1.shape == (8, 20) and (w1 > 0).all()


class _Fixed:
    """A model whose encoder returns given latents (its decoder is the model's)."""

    def __init__(self, model, z) -> None:  # noqa: ANN001
        self.model, self.z = model, z

    def encode(self, mel):  # noqa: ANN001, ANN202
        return self.z

    def decode(self, z):  # noqa: ANN001, ANN202
        return self.model.decode(z)


def test_steps_follow_the_sensitivity() -> None:
    """High-rate optimum: w * step^2 is the same for every group, and the mean log step is the
    uniform one (about the same rate)."""
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 3.0, (8, 20))
    base = np.array([2.0, 1.0, 0.5])
    s = allocate_steps(base, w)
    assert s.shape == (3, 8, 20)
    prod = w[None] * s.astype(np.float64) ** 2
    np.testing.assert_allclose(prod / prod[:, :1, :1], 1, rtol=1e-5)
    np.testing.assert_allclose(np.exp(np.log(s).mean(axis=(1, 2))), base, rtol=1e-5)
    i = np.unravel_index(np.argmax(w), w.shape)
    j = np.unravel_index(np.argmin(w), w.shape)
    assert (s[:, i[0], i[1]] < base).all() and (s[:, j[0], j[1]] > base).all()
    np.testing.assert_allclose(allocate_steps(base, np.ones((8, 20))), np.broadcast_to(
        base[:, None, None], (3, 8, 20)), rtol=1e-6)


def test_groups_below_the_error_level_get_no_bits() -> None:
    w = np.ones((2, 3))
    var = np.full((2, 3), 1.0)
    var[1, 2] = 0.01  # below 0.5^2 / 12 = 0.0208, above 0.1^2 / 12
    s = allocate_steps(np.array([0.5, 0.1]), w, var)
    assert s[0, 1, 2] == ZERO_STEP and s[1, 1, 2] == pytest.approx(0.1)
    assert (np.delete(s[0].ravel(), 5) == pytest.approx(0.5))


def test_bad_sensitivity_is_refused() -> None:
    with pytest.raises(ValueError, match="sensitivity"):
        allocate_steps(np.array([1.0]), np.zeros((2, 3)))

"""Which transformers/diffusers sub-packages ldmz's model loading imports (JSON on stdout)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def probe() -> dict[str, list[str]]:
    """Save and reload a tiny AutoencoderKL and SpeechT5HifiGan as ldmz does; list the imports.

    The answer is ``{"transformers.models": [...], "diffusers": [...]}``: the sub-packages of
    each that were imported (second dotted component), so the spec can leave the others out.
    """
    import torch
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        vae = AutoencoderKL(in_channels=1, out_channels=1, latent_channels=8,
                            block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                            down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, sample_size=32)
        vae.save_pretrained(Path(tmp) / "vae")
        cfg = SpeechT5HifiGanConfig(model_in_dim=64, upsample_initial_channel=16,
                                    upsample_rates=[5, 4, 8], upsample_kernel_sizes=[10, 8, 16],
                                    resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1]])
        SpeechT5HifiGan(cfg).save_pretrained(Path(tmp) / "vocoder")
        AutoencoderKL.from_pretrained(Path(tmp) / "vae")
        SpeechT5HifiGan.from_pretrained(Path(tmp) / "vocoder")

    def subs(prefix: str) -> list[str]:
        depth = prefix.count(".") + 1
        return sorted({n.split(".")[depth] for n in sys.modules
                       if n.startswith(prefix + ".") and n.count(".") >= depth})

    return {"transformers.models": subs("transformers.models"), "diffusers": subs("diffusers")}


if __name__ == "__main__":
    json.dump(probe(), sys.stdout)

"""Drive the real ldmz-gui (run under Xvfb by screenshot.sh): open, compress, select, screenshot."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300


def example_audio(tmp: Path) -> Path:
    """examples/example.flac if bundled, else a 6 s synthetic clip (chords, drums, a chirp)."""
    bundled = ROOT / "examples" / "example.flac"
    if bundled.exists():
        return bundled
    import numpy as np
    import soundfile as sf

    sr, dur = 22050, 6.0
    t = np.arange(int(sr * dur)) / sr
    rng = np.random.default_rng(1)
    x = np.zeros_like(t)
    for i, f0 in enumerate((220.0, 277.2, 329.6, 440.0, 329.6, 277.2)):
        on = (t >= i) & (t < i + 1.4)
        env = np.where(on, np.exp(-2.5 * (t - i)), 0.0)
        x += 0.12 * env * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 9))
    for beat in np.arange(0.0, dur, 0.5):
        k = (t >= beat) & (t < beat + 0.12)
        x[k] += 0.25 * rng.normal(size=k.sum()) * np.exp(-40 * (t[k] - beat))
    chirp = (t > 4.0) & (t < 5.8)
    x[chirp] += 0.08 * np.sin(2 * np.pi * (300 * (t[chirp] - 4) + 1200 * (t[chirp] - 4) ** 2))
    path = tmp / "example.wav"
    sf.write(path, (0.9 * x / np.abs(x).max()).astype(np.float32), sr)
    return path


def codec_model(tmp: Path, audio: Path) -> tuple[str, str]:
    """(model, vocoder): ldmz-small with its own vocoder if trained, else a stand-in.

    The stand-in is an untrained PatchVAE whose linear path is the PCA of the example's own
    4x4 mel patches (the "linear transform floor" of DESIGN.md), decoded with Griffin-Lim.
    """
    from ldmz.codec.models import available_models

    if "ldmz-small" in available_models():
        return "ldmz-small", ""
    import torch

    from ldmz.codec.audio_io import read_audio, resample
    from ldmz.codec.dsp.frontend import log_mel, normalize
    from ldmz.codec.models.patchvae import PatchVAE
    from ldmz.codec.train.trainer import export
    from ldmz.formats import MelParams

    mel = MelParams()  # 22.05 kHz, 80 mels, hop 256: the universal HiFi-GAN's front-end
    wav, sr = read_audio(audio)
    x, _ = normalize(resample(wav.mean(axis=0), sr, mel.sample_rate))
    m = log_mel(torch.from_numpy(x), mel)
    m = m[: m.shape[0] // 4 * 4]
    torch.manual_seed(0)
    model = PatchVAE()
    patches = torch.nn.functional.pixel_unshuffle(model._norm(m[None, None]), 4)
    model.init_pca(patches.permute(0, 2, 3, 1).reshape(-1, 16))
    folder = tmp / "pca-standin"
    export(model, folder)
    meta = {"mel": {k: getattr(mel, k) for k in mel.__dataclass_fields__}, "vocoder": "hifigan"}
    (folder / "ldmz.json").write_text(json.dumps(meta))
    return str(folder), "griffinlim"


def main(out: Path) -> int:
    """Run the app on the example, compress, shoot ``out``; 0 on success."""
    tmp = Path(tempfile.mkdtemp(prefix="ldmz-shot-"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")  # fresh settings, the user's untouched
    (tmp / "config" / "alsa").mkdir(parents=True)  # an ALSA null output if there is no card
    (tmp / "config" / "alsa" / "asoundrc").write_text("pcm.!default { type null }\n")
    audio = example_audio(tmp)
    model, vocoder = codec_model(tmp, audio)
    from PySide6.QtCore import QPointF, QTimer
    from PySide6.QtWidgets import QApplication

    from ldmz.codec.params import DecodeParams, EncodeParams
    from ldmz.gui import app
    from ldmz.gui.settings import AppSettings

    qapp = QApplication([sys.argv[0]])
    qapp.setOrganizationName("ldmz")
    qapp.setApplicationName("ldmz-gui")
    prefs = AppSettings()
    prefs.set_encode_params(EncodeParams(model=model))
    prefs.set_decode_params(DecodeParams(vocoder=vocoder))
    state = {"step": "open", "t0": time.monotonic(), "rc": 1}

    def window():  # noqa: ANN202
        from ldmz.gui.mainwindow import MainWindow

        return next((w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow)), None)

    def tick() -> None:
        win = window()
        if time.monotonic() - state["t0"] > TIMEOUT_S:
            print(f"screenshot: timed out at step {state['step']}", file=sys.stderr)
            qapp.exit(1)
        if win is None or win.tasks.busy():
            return
        if state["step"] == "open" and win.orig is not None:
            state["step"] = "compress"
            win.compress()
        elif state["step"] == "compress" and win.coded is not None:
            state["step"] = "shoot"
            shoot(win)

    def shoot(win) -> None:  # noqa: ANN001
        dur = win.orig.duration
        win.views.set_selection(dur * 0.30, dur * 0.55)  # a passage to A/B, as Shift+drag does
        win.seek(dur * 0.42)
        spec = win.views.panes[1].spec
        lo, hi = spec.vb.viewRange()[1]
        pos = spec.vb.mapViewToScene(QPointF(dur * 0.3, lo + (hi - lo) * 0.55))
        win.views._mouse_moved(pos)
        qapp.processEvents()
        pix = win.screen().grabWindow(win.winId())
        if pix.isNull():
            pix = win.grab()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_png = out.with_name(f".{out.name}.tmp.png")
        ok = pix.save(str(tmp_png), "PNG")
        if ok:
            os.replace(tmp_png, out)
            print(f"screenshot: wrote {out} ({pix.width()}x{pix.height()}) with model {model}")
        state["rc"] = 0 if ok else 1
        win.setWindowModified(False)
        win.close()

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(200)
    rc = app.main([str(audio)])
    return rc or state["rc"]


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png"))

"""Side panels: file header, tags, codec settings and metrics; they show values and emit edits."""

from __future__ import annotations

import html
from collections.abc import Mapping

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ldmz.codec.params import AFFINE_MODEL, DEFAULT_MODEL, DecodeParams, EncodeParams
from ldmz.formats import LdmzFile
from ldmz.gui.jobs import TAG_KEYS, Audio, bitrate_kbps, compression_ratio

VOCODERS = (("", "Model default"), ("hifigan", "HiFi-GAN (model's own)"),
            ("universal", "Universal HiFi-GAN"), ("griffinlim", "Griffin-Lim"),
            ("ldmzvoc", "ldmzvoc (fast)"))
METRIC_LABELS = {
    "snr": "SNR", "si_sdr": "SI-SDR", "lsd": "Log-spectral distance", "mel_l1": "Mel distance",
    "mr_stft": "Multi-res. STFT distance", "spectral_convergence": "Spectral convergence",
    "pesq_wb": "PESQ (wide-band) · speech", "stoi": "STOI · speech", "visqol": "ViSQOL",
}
SPEECH_ONLY = {"pesq_wb", "stoi"}  # defined and validated on speech only
SPEECH_NOTE = ("a speech metric: on music or other sounds it does not measure quality; "
               "judge those by the mel and STFT distances and ViSQOL")


def _rows(pairs: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><td style='color:#8a93a6;padding-right:10px'>{html.escape(k)}</td>"
                    f"<td>{html.escape(v)}</td></tr>" for k, v in pairs)
    return f"<table>{cells}</table>"


class InfoPanel(QWidget):
    """The opened file: a `.ldmz` header (model, bits, bitrate, duration, tags) or audio facts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("Open an audio file or a .ldmz file (Ctrl+O, or drop it here).")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.addWidget(self.label)
        lay.addStretch(1)
        self.pairs: list[tuple[str, str]] = []

    def show_ldmz(self, f: LdmzFile, size: int, name: str) -> None:
        """Show a header."""
        h = f.header
        q = h.quantizer
        bits = f"rans, quality {q.quality}" if q.mode == "rans" else "float16" \
            if q.mode == "float16" else (
            str(q.bits[0]) if len(set(q.bits)) == 1 else
            f"{'/'.join(map(str, q.bits))} (mean {sum(q.bits) / len(q.bits):.2f})")
        kbps = bitrate_kbps(size, h.duration)
        ratio = compression_ratio(size, f)
        self.pairs = [
            ("File", name), ("Model", f"{h.model.id} {h.model.revision}".strip()),
            ("Bits", bits), ("Bitrate", f"{kbps:.2f} kbps" if kbps else "-"),
            ("Compression", f"{ratio:.1f}:1 vs 16-bit PCM" if ratio else "-"),
            ("Duration", f"{h.duration:.2f} s"),
            ("Source", f"{h.source.channels} ch @ {h.source.sample_rate} Hz"),
            ("Mel", f"{h.mel.n_mels} mels @ {h.mel.sample_rate} Hz, hop {h.mel.hop_length}"),
            ("Latent", f"{h.latent.channels} x {h.latent.frames} x {h.latent.freq_bins}, "
                       f"{len(h.chunks)} chunks"),
            ("Vocoder", f"{h.vocoder} (the file's default)" if h.vocoder else "-"),
            ("Reconstruction", "not decoded yet"), ("Size", f"{size:,} bytes"),
            ("Writer", h.writer or "-"),
            *((f"Tag {k}", v) for k, v in sorted(h.tags.items())),
        ]
        self.label.setText(_rows(self.pairs))

    def show_reconstruction(self, vocoder: str) -> None:
        """Say which vocoder made the reconstruction on screen."""
        self.pairs = [(k, f"decoded with the {vocoder} vocoder" if k == "Reconstruction" else v)
                      for k, v in self.pairs]
        self.label.setText(_rows(self.pairs))

    def show_audio(self, a: Audio, name: str) -> None:
        """Show an audio file's facts."""
        self.pairs = [("File", name), ("Duration", f"{a.duration:.2f} s"),
                      ("Source", f"{a.data.shape[0]} ch @ {a.sr} Hz"),
                      ("Next", "Compress (Ctrl+R) to hear and see the codec")]
        self.label.setText(_rows(self.pairs))


class TagsPanel(QWidget):
    """Title, artist and comment, stored as tags when saving a `.ldmz`."""

    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        self.edits: dict[str, QLineEdit] = {}
        for key in TAG_KEYS:
            e = QLineEdit()
            e.setPlaceholderText(key)
            e.textEdited.connect(lambda *_: self.edited.emit())
            form.addRow(key.capitalize(), e)
            self.edits[key] = e

    def tags(self) -> dict[str, str]:
        """The edited tags (empty ones included)."""
        return {k: e.text() for k, e in self.edits.items()}

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Fill the fields (without emitting ``edited``)."""
        for k, e in self.edits.items():
            e.setText(tags.get(k, ""))


# The codec panel's payload codings: EncodeParams.coding "auto" is the entropy coding (format 2)
# with a model that has entropy tables, and the affine coding for one without (as `ldmz encode`).
CODINGS = (("entropy (quality)", "auto"), ("affine (bits)", "affine"))
MAX_QUALITY = 15  # the spin box's top; the model's tables bound the level at encode time


class CodecPanel(QWidget):
    """The codec's EncodeParams / DecodeParams as a form; ``changed`` fires on every edit."""

    changed = Signal()

    def __init__(self, models: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItems(["", *models])  # "": the coding's default model
        self.model.lineEdit().setPlaceholderText(
            f"default: {DEFAULT_MODEL} (affine: {AFFINE_MODEL})")
        self.model.setToolTip("A registered model name or a model folder; empty: the coding's "
                              f"default ({DEFAULT_MODEL}, or {AFFINE_MODEL} for the affine coding)")
        browse = QPushButton("…")
        browse.setFixedWidth(28)
        browse.setToolTip("Choose a model folder")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model, 1)
        row.addWidget(browse)
        self.coding = QComboBox()
        for label, key in CODINGS:
            self.coding.addItem(label, key)
        self.coding.setToolTip("entropy: format 2, rate set by the quality level (or a kbps "
                               "target); affine: format 1, the older coding, rate set by bits")
        self.quality = QSpinBox()
        self.quality.setRange(-1, MAX_QUALITY)
        self.quality.setSpecialValueText("model default")
        self.quality.setToolTip("quality level of the model's entropy tables, 0 = smallest")
        self.kbps = QDoubleSpinBox()
        self.kbps.setRange(0.0, 512.0)
        self.kbps.setDecimals(1)
        self.kbps.setSuffix(" kbps")
        self.kbps.setSpecialValueText("off")
        self.kbps.setToolTip("the highest quality whose file fits this rate, header included "
                             "(overrides the quality level; off: use the level)")
        self.bits = QSpinBox()
        self.bits.setRange(1, 8)
        self.bits.setToolTip("affine coding: bits of the widest latent channel")
        self.chunk = QDoubleSpinBox()
        self.chunk.setRange(0.5, 600.0)
        self.chunk.setSuffix(" s")
        self.vocoder = QComboBox()
        for key, label in VOCODERS:
            self.vocoder.addItem(label, key)
        self.gl_iters = QSpinBox()
        self.gl_iters.setRange(1, 1000)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.compress_button = QPushButton("Compress")
        self.decode_button = QPushButton("Decode again")
        form = QFormLayout(self)
        form.addRow("Model", row)
        form.addRow("Coding", self.coding)
        form.addRow("Quality", self.quality)
        form.addRow("Target rate", self.kbps)
        form.addRow("Bits", self.bits)
        form.addRow("Chunk", self.chunk)
        form.addRow("Vocoder", self.vocoder)
        form.addRow("Griffin-Lim iters", self.gl_iters)
        form.addRow("Device", self.device)
        buttons = QHBoxLayout()
        buttons.addWidget(self.compress_button)
        buttons.addWidget(self.decode_button)
        form.addRow(buttons)
        self.model.currentTextChanged.connect(self._emit)
        for w in (self.quality, self.kbps, self.bits, self.chunk, self.gl_iters):
            w.valueChanged.connect(self._emit)
        for w in (self.coding, self.vocoder, self.device):
            w.currentIndexChanged.connect(self._emit)
        self.coding.currentIndexChanged.connect(self._enable_rate)
        self._enable_rate()

    def _emit(self, *_: object) -> None:
        self.changed.emit()

    def _enable_rate(self, *_: object) -> None:
        """Bits only for the affine coding; quality and kbps only for the entropy coding."""
        affine = self.coding.currentData() == "affine"
        self.bits.setEnabled(affine)
        self.quality.setEnabled(not affine)
        self.kbps.setEnabled(not affine)

    def set_params(self, enc: EncodeParams, dec: DecodeParams) -> None:
        """Show ``enc`` and ``dec`` (without emitting ``changed``)."""
        self.blockSignals(True)
        self.model.setCurrentText(enc.model)
        self.coding.setCurrentIndex(0 if enc.coding != "affine" else 1)
        self.quality.setValue(max(-1, min(enc.quality, MAX_QUALITY)))
        self.kbps.setValue(max(0.0, enc.kbps))
        self.bits.setValue(enc.bits)
        self.chunk.setValue(enc.chunk_seconds)
        i = self.vocoder.findData(dec.vocoder or enc.vocoder)
        self.vocoder.setCurrentIndex(max(i, 0))
        self.gl_iters.setValue(dec.griffinlim_iters)
        self.device.setCurrentText(enc.device)
        self.blockSignals(False)
        self._enable_rate()

    def params(self, enc: EncodeParams, dec: DecodeParams) -> tuple[EncodeParams, DecodeParams]:
        """``enc`` and ``dec`` with the form's values."""
        from dataclasses import replace

        voc = self.vocoder.currentData() or ""
        dev = self.device.currentText()
        return (replace(enc, model=self.model.currentText().strip(),
                        coding=self.coding.currentData(), quality=self.quality.value(),
                        kbps=self.kbps.value(), bits=self.bits.value(),
                        chunk_seconds=self.chunk.value(), vocoder=voc, device=dev),
                replace(dec, vocoder=voc, griffinlim_iters=self.gl_iters.value(), device=dev))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder")
        if folder:
            self.model.setCurrentText(folder)


class MetricsPanel(QTableWidget):
    """Bitrate, compression ratio and compare()'s metrics, each with its better direction."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels(["Metric", "Value", "Unit", "Better"])
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setStretchLastSection(True)
        self.setAlternatingRowColors(True)

    def show_metrics(self, f: LdmzFile | None, size: int, report: object) -> None:
        """Fill the table: file figures first, then the report's metrics (if any)."""
        rows: list[tuple[str, str, str, str, str]] = []
        if f is not None:
            kbps = bitrate_kbps(size, f.header.duration)
            ratio = compression_ratio(size, f)
            rows.append(("Bitrate", "-" if kbps is None else f"{kbps:.2f}", "kbps",
                         "↓ lower", "file bits per second of audio"))
            rows.append(("Compression ratio", "-" if ratio is None else f"{ratio:.1f}", ":1",
                         "↑ higher", "16-bit PCM at the source rate over the file size"))
        for m in getattr(report, "metrics", []):
            value = "n/a" if m.value is None else f"{m.value:.4g}"
            note = "; ".join(x for x in (SPEECH_NOTE if m.name in SPEECH_ONLY else "",
                                         m.reason or "") if x)
            rows.append((METRIC_LABELS.get(m.name, m.name), value, m.unit,
                         "↑ higher" if m.higher_is_better else "↓ lower", note))
        if f is not None and report is None:
            rows.append(("Quality metrics", "n/a", "", "",
                         "no original to compare with: open the audio and compress it"))
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row[:4]):
                item = QTableWidgetItem(text)
                if row[4]:
                    item.setToolTip(row[4])
                self.setItem(r, c, item)
        self.resizeColumnsToContents()

    def values(self) -> dict[str, str]:
        """Metric label -> shown value (for tests and export)."""
        return {self.item(r, 0).text(): self.item(r, 1).text() for r in range(self.rowCount())}

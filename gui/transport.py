"""Playback control of the main window: play/pause/stop, seeking, the A/B switch, the playhead."""

from __future__ import annotations


class TransportMixin:
    """The main window's transport actions; the Player does the audio, the views the drawing."""

    def toggle_play(self) -> None:
        """Play or pause."""
        if self.player.length == 0:
            self.status.showMessage("Nothing to play yet", 3000)
        elif self.player.state == "playing":
            self.player.pause()
        elif not self.player.play():
            self.status.set_audio(self.player.reason)

    def stop(self) -> None:
        """Stop and rewind."""
        self.player.stop()

    def seek(self, seconds: float) -> None:
        """Move the play position and the playhead."""
        self.player.seek(seconds)
        self.views.set_playhead(self.player.position if self.player.length else seconds)

    def nudge(self, direction: int) -> None:
        """Seek by a tenth of the visible range."""
        lo, hi = self.views.x_range()
        self.seek(max(0.0, self.views.playhead() + direction * (hi - lo) / 10))

    def toggle_ab(self) -> None:
        """Switch between original and reconstruction at the same position."""
        self.select_source(1 - self.player.selected)

    def select_source(self, which: int) -> None:
        """Play the original (0) or the reconstruction (1) from the next audio block on."""
        self.player.select(which)
        self.update_state()

    def _position(self, seconds: float) -> None:
        self.views.set_playhead(seconds)
        self.time_label.setText(f" {int(seconds // 60)}:{seconds % 60:06.3f} ")

    # ------------------------------------------------------------------ selection
    def _selected(self, start: float, end: float) -> None:
        """The views' selection changed: playback keeps inside it (the whole file if none)."""
        if end > start:
            self.player.set_region(start, end)
            self.status.showMessage(f"Selection {start:.3f}–{end:.3f} s ({end - start:.3f} s); "
                                    "Play stays inside it, L loops it", 5000)
        else:
            self.player.clear_region()
        self.update_state()

    def play_selection(self) -> None:
        """Play the selection from its start."""
        sel = self.views.selection()
        if sel is None:
            self.status.showMessage("Nothing selected: Shift+drag on a plot", 3000)
            return
        self.player.pause()
        self.seek(sel[0])
        self.toggle_play()

    def toggle_loop(self) -> None:
        """Loop the selection (or the whole file) instead of stopping at its end."""
        self.player.set_loop(not self.player.loop)
        self.update_state()

    def mark_selection(self, edge: int) -> None:
        """Put the selection's start (0) or end (1) at the playhead."""
        t = self.views.playhead()
        lo, hi = self.views.selection() or (t, self.views.duration if edge == 0 else 0.0)
        if edge == 0:
            self.views.set_selection(t, max(hi, t))
        else:
            self.views.set_selection(min(lo, t), t)

    def clear_selection(self) -> None:
        """Forget the selection."""
        self.views.clear_selection()

    # ------------------------------------------------------------------ output device
    def fill_device_menu(self) -> None:
        """Rebuild Playback > Output Device."""
        from PySide6.QtGui import QActionGroup

        menu = self.device_menu
        menu.clear()
        if not self.player.probed:
            self.player.probe()
        names = self.player.devices()
        if not names:
            a = menu.addAction(f"(none: {self.player.reason or 'no audio output device'})")
            a.setEnabled(False)
            return
        group = QActionGroup(menu)
        for name, label in [("", "System default"), *((n, n) for n in names)]:
            a = menu.addAction(label)
            a.setCheckable(True)
            a.setChecked(name == self.player.device)
            a.triggered.connect(lambda *_a, n=name: self.choose_device(n))
            group.addAction(a)

    def choose_device(self, name: str) -> None:
        """Play through ``name`` ("" = the system default), and remember it."""
        self.player.set_device(name)
        self.settings.set_output_device(name)
        self.status.set_audio(f"Audio out: {name or 'system default'}")

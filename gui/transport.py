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

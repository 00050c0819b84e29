#!/usr/bin/env bash
# Set up ldmz on a fresh Debian machine: system packages, a venv in .venv, torch (CPU) first.
#   packaging/setup.sh          runtime + GUI
#   packaging/setup.sh --test   also the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(
  libsndfile1 libportaudio2 alsa-utils ffmpeg opus-tools       # audio I/O, playback, bench codecs
  libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3  # Qt offscreen
  libxcb-cursor0 xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
  libxcb-shape0 libxcb-randr0 libxcb-xkb1 libx11-xcb1             # Qt xcb plugin (screenshots)
  desktop-file-utils libxml2-utils file shared-mime-info         # packaging checks
  bash-completion zsh man-db                                     # shell completion, man page
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-base-apps \
  gstreamer1.0-plugins-good python3-gst-1.0 gstreamer1.0-python3-plugin-loader  # GStreamer plug-in
)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: an open range would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
extras="all"
[ "${1:-}" = "--test" ] && extras="all,test"
.venv/bin/python -m pip install -q -e ".[${extras}]"
# shell completion (bash, zsh) and the man page, for this user
packaging/install-shell.sh >/dev/null

#!/bin/sh
# Install the ldmz GStreamer plug-in for the current user (or into DEST): copies
# python/ldmz_gst.py to ~/.gstreamer-1.0/plugins/python/ (where GStreamer's Python plug-in
# loader looks when GST_PLUGIN_SYSTEM_PATH is unset) and writes ldmz_gst.venv next to it,
# naming the venv ldmz is installed in (LDMZ_VENV, default: this checkout's .venv).
#   packaging/gstreamer/install.sh [DEST]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${LDMZ_VENV:-$(cd "$here/../.." && pwd)/.venv}
dest=${1:-$HOME/.gstreamer-1.0/plugins/python}
if [ ! -x "$venv/bin/python" ]; then
  echo "install.sh: no venv at $venv; run packaging/setup.sh first or set LDMZ_VENV" >&2
  exit 1
fi
venv=$(cd "$venv" && pwd -P)
mkdir -p "$dest"
cp "$here/python/ldmz_gst.py" "$dest/ldmz_gst.py.tmp" && mv "$dest/ldmz_gst.py.tmp" "$dest/ldmz_gst.py"
printf '%s\n' "$venv" > "$dest/ldmz_gst.venv"
echo "installed $dest/ldmz_gst.py (ldmz from $venv)"

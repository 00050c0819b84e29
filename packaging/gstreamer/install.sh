#!/bin/sh
# Install the ldmz GStreamer plug-in for the current user (or into DEST): copies
# python/ldmz_gst.py to ~/.gstreamer-1.0/plugins/python/ (where GStreamer's Python plug-in
# loader looks when GST_PLUGIN_SYSTEM_PATH is unset) and writes ldmz_gst.venv next to it,
# naming the venv ldmz is installed in (LDMZ_VENV, default: this checkout's .venv). Into that
# venv's site-packages it puts ldmz_gst_gi.py/.pth, so that players started from a shell with the
# venv activated still find the system's gi (see venv/ldmz_gst_gi.py).
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
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
# the folder of the Python the loader embeds (the system's python3), which holds gi
sys_pkgs=$(env -u PYTHONPATH -u PYTHONHOME PATH=/usr/bin:/bin /usr/bin/python3 -c \
  'import gi, os; print(os.path.dirname(os.path.dirname(gi.__file__)))' 2>/dev/null || true)
mkdir -p "$dest"
cp "$here/python/ldmz_gst.py" "$dest/ldmz_gst.py.tmp" && mv "$dest/ldmz_gst.py.tmp" "$dest/ldmz_gst.py"
printf '%s\n' "$venv" > "$dest/ldmz_gst.venv.tmp" && mv "$dest/ldmz_gst.venv.tmp" "$dest/ldmz_gst.venv"
if [ -n "$sys_pkgs" ]; then
  sed "s|^SYSTEM_PACKAGES = .*|SYSTEM_PACKAGES = \"$sys_pkgs\"|" "$here/venv/ldmz_gst_gi.py" \
    > "$site/ldmz_gst_gi.py.tmp" && mv "$site/ldmz_gst_gi.py.tmp" "$site/ldmz_gst_gi.py"
  cp "$here/venv/ldmz_gst_gi.pth" "$site/ldmz_gst_gi.pth.tmp" \
    && mv "$site/ldmz_gst_gi.pth.tmp" "$site/ldmz_gst_gi.pth"
else
  echo "install.sh: no system python3 with gi (python3-gi); players in an activated venv" \
       "will not load the plug-in" >&2
fi
echo "installed $dest/ldmz_gst.py (ldmz from $venv)"

#!/bin/sh
# Install ldmz desktop integration for the current user (idempotent; re-run after updating).
#   ~/.local/share/applications/ldmz-gui.desktop
#   ~/.local/share/mime/packages/ldmz-mime.xml      (+ update-mime-database)
#   ~/.local/share/icons/hicolor/{scalable,256x256}/apps/ldmz.{svg,png}
#   ~/.magic                                         (file(1) entry, between markers)
# The entry runs the venv's ldmz-gui by absolute path (LDMZ_VENV, default: this checkout's .venv),
# so it works when the venv is not on PATH.
# Usage: packaging/install-desktop.sh [--uninstall]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
venv=${LDMZ_VENV:-$(cd "$here/.." && pwd)/.venv}
data="${XDG_DATA_HOME:-$HOME/.local/share}"
magic="$HOME/.magic"
begin="# >>> ldmz >>>"
end="# <<< ldmz <<<"

strip_magic() {
    # drop a previously installed ldmz block from ~/.magic
    [ -f "$magic" ] || return 0
    tmp=$(mktemp)
    awk -v b="$begin" -v e="$end" '$0==b{skip=1;next} $0==e{skip=0;next} !skip' "$magic" > "$tmp"
    cat "$tmp" > "$magic"
    rm -f "$tmp"
    [ -s "$magic" ] || rm -f "$magic"
}

refresh() {
    if command -v update-mime-database >/dev/null 2>&1; then
        update-mime-database "$data/mime" >/dev/null 2>&1 || true
    fi
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database "$data/applications" >/dev/null 2>&1 || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -t "$data/icons/hicolor" >/dev/null 2>&1 || true
    fi
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$data/applications/ldmz-gui.desktop" \
          "$data/mime/packages/ldmz-mime.xml" \
          "$data/icons/hicolor/scalable/apps/ldmz.svg" \
          "$data/icons/hicolor/256x256/apps/ldmz.png"
    strip_magic
    refresh
    echo "ldmz desktop integration removed from $data"
    exit 0
fi

if [ -x "$venv/bin/ldmz-gui" ]; then
    gui=$(cd "$venv/bin" && pwd -P)/ldmz-gui
else
    gui=$(command -v ldmz-gui || true)
fi
if [ -z "$gui" ]; then
    echo "install-desktop.sh: no ldmz-gui in $venv/bin or on PATH; run packaging/setup.sh" \
         "first or set LDMZ_VENV" >&2
    exit 1
fi
case "$gui" in *[!A-Za-z0-9_./+-]*)
    echo "install-desktop.sh: $gui: a path with spaces or quotes cannot go into Exec=" >&2
    exit 1;;
esac
mkdir -p "$data/applications"
sed -e "s|^Exec=ldmz-gui |Exec=$gui |" -e "s|^TryExec=ldmz-gui\$|TryExec=$gui|" \
    "$here/ldmz-gui.desktop" > "$data/applications/ldmz-gui.desktop.tmp"
chmod 644 "$data/applications/ldmz-gui.desktop.tmp"
mv "$data/applications/ldmz-gui.desktop.tmp" "$data/applications/ldmz-gui.desktop"
install -Dm644 "$here/ldmz-mime.xml" "$data/mime/packages/ldmz-mime.xml"
install -Dm644 "$here/ldmz.svg" "$data/icons/hicolor/scalable/apps/ldmz.svg"
install -Dm644 "$here/ldmz.png" "$data/icons/hicolor/256x256/apps/ldmz.png"

strip_magic
{ echo "$begin"; cat "$here/ldmz.magic"; echo "$end"; } >> "$magic"

refresh
echo "ldmz desktop integration installed under $data (file(1) magic in $magic)"

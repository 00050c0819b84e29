#!/bin/sh
# Install ldmz's shell completion and manual page for the current user, generated from the CLI's
# own argparse parser (shtab, argparse-manpage); idempotent, re-run after updating ldmz.
#   ~/.local/share/bash-completion/completions/ldmz   bash-completion loads it on first use
#   ~/.local/share/zsh/site-functions/_ldmz           on zsh's $fpath (a line to add is printed)
#   ~/.local/share/man/man1/ldmz.1                    man finds it when ~/.local/bin is on PATH
# Usage: packaging/install-shell.sh [--uninstall]     (LDMZ=/path/to/ldmz picks the command)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
data="${XDG_DATA_HOME:-$HOME/.local/share}"
bash_f="${BASH_COMPLETION_USER_DIR:-$data/bash-completion}/completions/ldmz"
zsh_d="$data/zsh/site-functions"
man_f="$data/man/man1/ldmz.1"
ldmz="${LDMZ:-$root/.venv/bin/ldmz}"
[ -x "$ldmz" ] || ldmz=ldmz

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$bash_f" "$zsh_d/_ldmz" "$man_f"
    echo "removed ldmz completion and manual page"
    exit 0
fi

put() {  # put FILE ARGS...: write `ldmz ARGS` to FILE via a temporary file
    dst=$1; shift
    mkdir -p "$(dirname "$dst")"
    "$ldmz" "$@" > "$dst.tmp.$$" && mv "$dst.tmp.$$" "$dst" || { rm -f "$dst.tmp.$$"; exit 1; }
}
put "$bash_f" completion bash
put "$zsh_d/_ldmz" completion zsh
put "$man_f" help --man
mkdir -p "$HOME/.local/bin"  # man maps each PATH entry .../bin to .../share/man
echo "bash: $bash_f"
echo "zsh:  $zsh_d/_ldmz"
case " ${FPATH:-} " in
    *"$zsh_d"*) ;;
    *) echo "      (zsh users: add  fpath+=($zsh_d)  before compinit in ~/.zshrc)" ;;
esac
echo "man:  $man_f  (man ldmz)"

"""Frozen entry point of `ldmz` (the command line)."""

from ldmz.codec.cli import entry

if __name__ == "__main__":
    entry()

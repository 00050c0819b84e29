"""Run the `ldmz` command: ``python -m ldmz``."""

from ldmz.codec.cli import entry

entry()

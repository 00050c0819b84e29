"""The ldmz exception hierarchy: every error is an LdmzError and also a builtin type."""

from __future__ import annotations


class LdmzError(Exception):
    """Base class of every error ldmz raises on purpose."""


class FormatError(LdmzError, ValueError):
    """A `.ldmz` file (or byte string) is damaged, forged or not a `.ldmz` at all."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class VersionError(FormatError):
    """The file was written in a format version this reader does not support."""


class ChecksumError(FormatError):
    """A header or chunk checksum does not match its bytes."""

"""Exceptions of the task layer.

Each failure a user can fix gets its own type and a message that says what to do, so that a
runner can catch, e.g., a missing data folder separately from a broken file, and so that nothing
is ever skipped silently.
"""

from __future__ import annotations


class UnknownTaskError(KeyError, ValueError):
    """A dataset/task/suite name that is not registered.

    It subclasses both KeyError (it is a failed registry lookup) and ValueError (it is a bad
    argument, e.g. from a config file), so callers can catch either.
    """

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would repr() the message, adding quotes.
        return str(self.args[0])


class DataNotFoundError(FileNotFoundError):
    """LongBench rows could be found neither locally nor on the hub."""


class DataFormatError(ValueError):
    """A LongBench row or file is malformed; the message names the file and line."""


class MissingFieldError(DataFormatError):
    """A required field is absent from a row; the message names field, file and line."""

    def __init__(self, field: str, source: str, line: int | None) -> None:
        self.field = field
        self.source = source
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: missing required field {field!r}")


class PromptTooLongError(ValueError):
    """A prompt does not fit the model's context and truncation is disabled."""

"""The exceptions every package shares, and the exit code each one maps to.

::

    RdtError                      (exit 3 unless said otherwise)
    └── BadInput                  input we cannot work with; one clear line, exit 3
        ├── LogError              the log cannot be opened or read
        │   ├── NotALog           the file or database is not an rdt log
        │   ├── LogTooNew         written by a newer rdt; please update
        │   ├── UnknownRecording  no recording with that id or name
        │   └── AmbiguousRecording  a number that is one recording's id and another's name
        ├── ReducerLoadError      ``--reducer REF`` cannot be imported or is not callable
        ├── InvalidJSON           a JSON argument or file that does not parse
        ├── BusError              ``--bus``: NATS unreachable, nats-py missing, join refused
        └── EmptyRecording        a recording with no events, asked for states or a verdict

The CLI catches :class:`RdtError`, prints ``str(error)`` as one line on stderr and exits with
``error.exit_code``. Library code raises these; it never prints or exits.
"""

from __future__ import annotations

from typing import Any


class RdtError(Exception):
    """Base of every error rdt reports to a user."""

    exit_code: int = 3


class BadInput(RdtError):
    """Input we cannot work with (exit 3)."""


class LogError(BadInput):
    """The log cannot be opened or read."""


class NotALog(LogError):
    """The file or database is not an rdt log."""


class LogTooNew(LogError):
    """The log was written by a newer version of rdt."""


class UnknownRecording(LogError):
    """No recording with the given id or name."""


class AmbiguousRecording(LogError):
    """A ``--recording`` number that is one recording's id and another recording's name."""


class ReducerLoadError(BadInput):
    """A reducer reference that cannot be imported or is not callable."""


class InvalidJSON(BadInput):
    """A JSON argument or file that does not parse."""


class BusError(BadInput):
    """The event bus cannot be used: nats-py missing, NATS unreachable, the join refused."""


def one_line(error: BaseException) -> str:
    """An exception (or the driver error inside a SQLAlchemy one) as one line of text."""
    text = str(getattr(error, "orig", None) or error)
    return " ".join(text.split()) or type(error).__name__


class EmptyRecording(BadInput):
    """A recording with no events, asked for states, a verdict or an event export.

    Its client messages are not events unless the user says so (``--source messages``):
    folding commands through an event reducer gives a state, or an ok, that means nothing.
    """

    def __init__(self, recording: Any) -> None:
        self.recording = recording
        name = getattr(recording, "name", None)
        rid = getattr(recording, "id", None)
        which = f"recording {rid}" + (f" ({name!r})" if name else "")
        super().__init__(
            f"{which} has no events (recorded without --devtools-path or --events-from "
            "inbound?): nothing to replay; --source messages replays its client messages, "
            "--allow-empty accepts an empty recording"
        )


def refuse_empty(recording: Any, last_v: int | None, *, allow_empty: bool = False) -> None:
    """The one rule for a recording without events (``last_v`` ``None``): commands that give
    states, verdicts or an event export refuse it, unless the user allows it.

    Raises:
        EmptyRecording: no events and not ``allow_empty``.
    """
    if last_v is None and not allow_empty:
        raise EmptyRecording(recording)

"""The one error type of the project; the CLI turns it into one line and exit code 2."""

from __future__ import annotations

import difflib
import errno


class SwarmCNNError(Exception):
    """A problem with the user's input: the message names the bad value and where it came from."""


class SpecError(SwarmCNNError):
    """An architecture spec that cannot be parsed or cannot work for the given input."""


class DataError(SwarmCNNError):
    """A data source that cannot be read or does not make a classification data set."""


class CheckpointError(SwarmCNNError):
    """A model directory that is missing, incomplete or from an incompatible version."""


def did_you_mean(word: str, choices: list[str]) -> str:
    """A '; did you mean ...?' suffix when a close match exists, as argparse and skorch do."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


# how the libraries that write files say the disk is full: OSError's errno, SQLite's SQLITE_FULL, and the Rust
# io::Error that safetensors puts in its message
_DISK_FULL_WORDS = ("no space left on device", "database or disk is full", "storagefull", "os error 28")


def os_error_text(error: OSError) -> str:
    """An OSError as one line naming the file: 'cannot write 'F/m': no space left on device (the disk is full)'."""
    where = f": '{error.filename}'" if error.filename else ""
    if is_disk_full(error):
        return f"cannot write{where.removeprefix(':')}: no space left on device (the disk is full)"
    return f"{error.strerror or error}{where}"


def is_disk_full(error: BaseException) -> bool:
    """Whether error says the disk is full (ENOSPC), whichever library raised it."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    return any(words in str(error).lower() for words in _DISK_FULL_WORDS)

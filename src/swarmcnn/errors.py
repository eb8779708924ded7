"""The one error type of the project; the CLI turns it into one line and exit code 2."""

from __future__ import annotations

import difflib


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

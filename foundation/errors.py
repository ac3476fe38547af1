"""Errors a user can fix. The CLI prints them without a traceback and exits with their code."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PravahError(Exception):
    """A mistake in a command, config or data file: printed as is, exit code 2."""

    exit_code = 2


class StepFailed(PravahError):
    """A pipeline step (or the whole run) failed at run time: exit code 1."""

    exit_code = 1


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""

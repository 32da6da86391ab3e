"""Errors that end a run with one clear line instead of a traceback."""

from __future__ import annotations


class TapKoreBillingError(Exception):
    """A failure the user can act on; its message is the whole story."""

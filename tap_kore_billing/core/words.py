"""Counts in log lines, in words that agree with them: `1 request`, `2 requests`."""

from __future__ import annotations


def counted(number: int, noun: str) -> str:
    """`number` and `noun`, plural unless the number is one ("entry": "entries")."""
    if number == 1:
        return f"{number} {noun}"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return f"{number} {noun[:-1]}ies"
    return f"{number} {noun}s"

"""The command line's config and state files, checked before the SDK reads them.

The SDK would answer a missing or malformed file with a usage error or a bare
JSONDecodeError; here each problem is one line naming the file and what was expected.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

from tap_kore_billing.core.errors import TapKoreBillingError

STATE_SHAPES = (
    'a Singer state ({"bookmarks": {...}}), a STATE message ({"type": "STATE", '
    '"value": {...}}) or {}'
)


def prepare_arguments(args: list[str]) -> tuple[list[str], list[str]]:
    """Check every `--config` and `--state` file; return the arguments to pass on and notes
    to log. A `--state` file that does not exist yet (a first run) is dropped with a note.

    Raises:
        TapKoreBillingError: a file is missing, unreadable, not JSON, or of the wrong shape.
    """
    kept: list[str] = []
    notes: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        option, _, inline = arg.partition("=")
        if option not in ("--config", "--state"):
            kept.append(arg)
            index += 1
            continue
        if inline or "=" in arg:
            value, consumed = inline, 1
        elif index + 1 < len(args):
            value, consumed = args[index + 1], 2
        else:
            kept.append(arg)  # let the SDK report the missing value
            index += 1
            continue
        index += consumed
        if option == "--config":
            if value != "ENV":
                _check_config(Path(value))
            kept += [option, value]
        elif not Path(value).exists():
            notes.append(f"state file {value} does not exist yet: starting without state")
        else:
            _check_state(Path(value))
            kept += [option, value]
    return kept, notes


def _load(kind: str, path: Path) -> t.Any:
    if not path.is_file():
        raise TapKoreBillingError(f"{kind} file {path} does not exist or is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TapKoreBillingError(f"{kind} file {path} cannot be read: {exc}") from None
    if not text.strip():
        # E.g. `grep ... | tail -1 > state.json` after a run that printed no STATE.
        raise TapKoreBillingError(
            f"{kind} file {path} is empty; it must hold a JSON object"
            + (" (pass {} for no state, or delete the file)" if kind == "state" else "")
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TapKoreBillingError(
            f"{kind} file {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}"
        ) from None


def _check_config(path: Path) -> None:
    if not isinstance(_load("config", path), dict):
        raise TapKoreBillingError(f"config file {path} must hold a JSON object of settings")


def _check_state(path: Path) -> None:
    state = _load("state", path)
    if isinstance(state, dict) and state.get("type") == "STATE":
        state = state.get("value")
    if not isinstance(state, dict) or (state and not isinstance(state.get("bookmarks"), dict)):
        raise TapKoreBillingError(f"state file {path} is not {STATE_SHAPES}")

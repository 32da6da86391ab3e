"""Records of the `apps` and `app_links` streams, from Get Bots and Get Linked Apps answers.

Get Bots answers with each app's JWT credentials, client secrets in clear. A record is built
from the fields named here and nothing else, so a secret (or any field a newer API adds) never
reaches schema handling, logs, state, batch files or stream maps.
"""

from __future__ import annotations

import logging
import typing as t
from datetime import datetime

from tap_kore_billing.core.datetimes import UTC, to_iso

# The states of a link, in the order the answer's lists are read.
LINK_LISTS = (
    ("published", "publishedLinkedApps", "uxoUBPublished"),
    ("configured", "configuredLinkedApps", "uxoUBConfigured"),
)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _linked_id(entry: object) -> str | None:
    # The shape of isLinkedTo's entries is not documented: an ID, or an object holding one.
    if isinstance(entry, str):
        return entry or None
    if isinstance(entry, dict):
        return next((v for k in ("_id", "botId", "id") if (v := _text(entry.get(k)))), None)
    return None


def _created_on(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return to_iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def app_from_bot(bot: t.Mapping[str, t.Any]) -> dict[str, t.Any] | None:
    """An `apps` record from one Get Bots entry (None: the entry names no app)."""
    bot_id = _text(bot.get("_id"))
    if bot_id is None:
        return None
    linked = bot.get("isLinkedTo")
    return {
        "botId": bot_id,
        "name": _text(bot.get("name")),
        "status": _text(bot.get("status")),
        "purpose": _text(bot.get("purpose")),
        "type": _text(bot.get("type")),
        "defaultLanguage": _text(bot.get("defaultLanguage")),
        "createdOn": _created_on(bot.get("createdOn")),
        "isLinkedTo": (
            [i for e in linked if (i := _linked_id(e))] if isinstance(linked, list) else None
        ),
        "source": "get_bots",
        "billingReadable": None,
    }


def bare_app(bot_id: str, source: str, **known: t.Any) -> dict[str, t.Any]:
    """An `apps` record for an app known only by its ID (and what a link says of it)."""
    record: dict[str, t.Any] = dict.fromkeys(
        ("name", "status", "purpose", "type", "defaultLanguage", "createdOn", "isLinkedTo")
    )
    record.update(botId=bot_id, source=source, billingReadable=None, **known)
    return record


def _version(value: object, what: str, logger: logging.Logger) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    logger.warning("Get Linked Apps: %s is %r, not a whole number; left null", what, value)
    return None


def _status(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def links_from_answer(
    parent: str, answer: t.Mapping[str, t.Any], logger: logging.Logger
) -> list[dict[str, t.Any]]:
    """`app_links` records from one app's Get Linked Apps answer: each published and each
    configured link, with what the answer says of the linked app. An app that links nothing
    may leave the lists out."""
    records: list[dict[str, t.Any]] = []
    for state, details_key, ids_key in LINK_LISTS:
        seen: set[str] = set()
        entries = answer.get(details_key)
        for entry in entries if isinstance(entries, list) else []:
            linked = _linked_id(entry)
            if linked is None:
                logger.warning(
                    "Get Linked Apps of app %s: a %s linked app without an ID, left out",
                    parent,
                    state,
                )
                continue
            if linked in seen:
                continue
            seen.add(linked)
            if not isinstance(entry, dict):  # an ID alone
                records.append(bare_link(parent, linked, state))
                continue
            where = f"app {parent}, {state} link to {linked}"
            records.append(
                {
                    "parentBotId": parent,
                    "linkedBotId": linked,
                    "state": state,
                    "name": _text(entry.get("name")),
                    "appType": _text(entry.get("appType")),
                    "type": _text(entry.get("type")),
                    "status": _status(entry.get("status")),
                    "defaultLanguage": _text(entry.get("defaultLanguage")),
                    "configuredVersion": _version(
                        entry.get("configuredVersion"), f"{where}: configuredVersion", logger
                    ),
                    "publishedVersion": _version(
                        entry.get("publishedVersion"), f"{where}: publishedVersion", logger
                    ),
                }
            )
        # The unified-orchestrator lists may name a linked app the detailed list leaves out.
        ids = answer.get(ids_key)
        listed = ids.get("linkedApps") if isinstance(ids, dict) else None
        for entry in listed if isinstance(listed, list) else []:
            linked = _linked_id(entry)
            if linked is not None and linked not in seen:
                seen.add(linked)
                records.append(bare_link(parent, linked, state))
    return records


def bare_link(parent: str, linked: str, state: str) -> dict[str, t.Any]:
    """A link known only by its two apps."""
    record: dict[str, t.Any] = dict.fromkeys(
        (
            "name",
            "appType",
            "type",
            "status",
            "defaultLanguage",
            "configuredVersion",
            "publishedVersion",
        )
    )
    record.update(parentBotId=parent, linkedBotId=linked, state=state)
    return record

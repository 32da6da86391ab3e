"""The app inventory of the emulator: Get Bots (account scope) and Get Linked Apps (app scope),
in their least convenient plausible form (see the API notes, apps.md).

- Every attribute of app N (1-based) comes from the seed and N alone: its name ("Front Desk",
  "Claims Bot", ..., then "App N"), purpose, language, createdOn, status (apps 1-3 always
  "published"; "awaitingApproval", which the docs do not list, for app 4 and every tenth app
  after it) and one JWT app whose clientSecret, in clear as the API sends it, is
  `planted_secret` plus "-N" (a generated secret differs per start: pass one to compare runs).
- Get Bots lists the apps in a stable hash order, not by position; `offset` counts rows,
  `limit` is capped at 50 silently; `isLinkedTo` lists {_id, name} of the Parents that publish a
  link to the app (its shape is not documented).
- Get Linked Apps: an app that links nothing answers without any of the four link keys.
- `unreadable_apps` answer 403 on every app-scope path; `hidden_apps` (the last N) are absent
  from both answers until reveal().
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

from tap_kore_billing.sandbox.wire import ApiError

UTC = timezone.utc
BOTS_PATH = "/api/public/bots"
LINK_PATH = re.compile(r"/api/1\.1/public/bot/([^/]+)/universalbot/link")
# Data knobs the inventory reads and the session generator does not.
APP_KNOBS = frozenset({"links", "draft_links", "unreadable_apps", "planted_secret"})
MAX_BOTS_PAGE = 50
NAMES = (
    "Front Desk",
    "Claims Bot",
    "Billing Help",
    "Policy Assistant",
    "Roadside Help",
    "HR Helpdesk",
    "Travel Desk",
    "IT Support",
)
EMPLOYEE_NAMES = frozenset({"HR Helpdesk", "Travel Desk", "IT Support"})
# The apps' creation dates: fixed from the seed, never from the clock.
CREATED_FROM = datetime(2023, 1, 2, tzinfo=UTC)
DAY_MS = 86_400_000


def _iso_ms(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def name_of(index: int) -> str:
    """The app's name by its 1-based position."""
    return NAMES[index - 1] if index <= len(NAMES) else f"App {index}"


def status_of(index: int) -> str:
    # Every tenth app from the fourth on waits for approval: a value the docs do not list.
    return "awaitingApproval" if index >= 4 and index % 10 == 4 else "published"


@dataclass(frozen=True)
class AppsRoute:
    """Which inventory endpoint a path is: Get Bots (bot_id None) or an app's Get Linked Apps."""

    bot_id: str | None


def route(path: str) -> AppsRoute | None:
    if path == BOTS_PATH:
        return AppsRoute(None)
    match = LINK_PATH.fullmatch(path)
    return AppsRoute(match.group(1)) if match else None


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per app
class App:
    index: int
    bot_id: str
    name: str
    bot: dict[str, Any]  # its Get Bots entry, isLinkedTo apart
    configured_version: int
    published_version: str


def _make_app(seed: int, index: int, bot_id: str, account: str, secret: str) -> App:
    rng = random.Random(f"kore-sandbox:{seed}:app:{index}")  # noqa: S311 - test data
    name = name_of(index)
    created = CREATED_FROM + timedelta(days=7 * index, milliseconds=rng.randrange(DAY_MS))
    employee = name in EMPLOYEE_NAMES or (index > len(NAMES) and index % 4 == 0)
    bot = {
        "_id": bot_id,
        "accountId": account,
        "purpose": "employee" if employee else "customer",
        "createdOn": _iso_ms(created),
        "createdBy": f"u-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "type": "default",
        "defaultLanguage": "de" if index % 7 == 5 else "en",
        "isDeflect": False,
        "resourceid": "btstreams",
        "status": status_of(index),
        "icon": f"{rng.getrandbits(96):024x}",
        "name": name,
        "description": f"{name}, app {index} of the emulated account",
        "containsPanelOrWidget": False,
        "jwtApps": [
            {
                "clientId": f"cs-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                "clientSecret": f"{secret}-{index}",
                "jtiClaimEnforced": False,
                "jweEncryptionEnforced": False,
                "createdOn": _iso_ms(created + timedelta(minutes=5)),
            }
        ],
    }
    published = int(created.timestamp()) + rng.randrange(30 * 86400, 400 * 86400)
    return App(index, bot_id, name, bot, published + rng.randrange(1, 90 * 86400), str(published))


def _checked_links(
    pairs: Sequence[tuple[int, int]], apps: int, knob: str
) -> tuple[tuple[int, int], ...]:
    for pair in pairs:
        if max(pair) > apps:
            raise ValueError(f"{knob}: no app number {max(pair)} (apps={apps})")
    return tuple(pairs)


def _query_int(params: dict[str, list[str]], name: str, default: int) -> int:
    values = params.get(name)
    if not values:
        return default
    text = values[-1].strip()
    if not text.isdigit():
        raise ApiError(400, f"{name} must be a non-negative integer")
    return int(text)


class Inventory:
    """The account's apps and their links, and the two answers built from them."""

    def __init__(
        self,
        *,
        seed: int,
        bot_ids: Sequence[str],
        links: Sequence[tuple[int, int]],
        draft_links: Sequence[tuple[int, int]],
        unreadable_apps: frozenset[int],
        hidden_apps: int,
        planted_secret: str | None,
    ) -> None:
        count = len(bot_ids)
        self.published = _checked_links(links, count, "links")
        self.drafts = _checked_links(draft_links, count, "draft_links")
        for number in unreadable_apps:
            if number > count:
                raise ValueError(f"unreadable_apps: no app number {number} (apps={count})")
        self.planted_secret = planted_secret or "sandbox-app-secret-" + secrets.token_hex(8)
        account_rng = random.Random(f"kore-sandbox:{seed}:account")  # noqa: S311 - test data
        account = f"{account_rng.getrandbits(96):024x}"
        self.apps = [
            _make_app(seed, i + 1, bot_id, account, self.planted_secret)
            for i, bot_id in enumerate(bot_ids)
        ]
        self.by_id = {app.bot_id: app for app in self.apps}
        self.unreadable = frozenset(self.apps[n - 1].bot_id for n in unreadable_apps)
        self.first_hidden = count - hidden_apps + 1  # apps from this position on come later
        self.revealed = hidden_apps == 0
        self._order = sorted(
            self.apps,
            key=lambda app: hashlib.blake2b(f"{seed}:bots:{app.bot_id}".encode()).digest(),
        )

    # -- what tests and the demo read ----------------------------------------------------------

    def hidden(self, index: int) -> bool:
        return not self.revealed and index >= self.first_hidden

    def readable(self, bot_id: str) -> bool:
        """Whether app-scope paths answer for this app (an unknown one is the caller's call)."""
        return bot_id not in self.unreadable

    def listing(self) -> list[dict[str, Any]]:
        return [
            {
                "botId": app.bot_id,
                "name": app.name,
                "index": app.index,
                "status": app.bot["status"],
                "hidden": self.hidden(app.index),
            }
            for app in self.apps
        ]

    def visible_apps(self) -> list[App]:
        return [app for app in self.apps if not self.hidden(app.index)]

    def _links(self, pairs: Sequence[tuple[int, int]]) -> list[tuple[App, App]]:
        return [
            (self.apps[parent - 1], self.apps[linked - 1])
            for parent, linked in pairs
            if not (self.hidden(parent) or self.hidden(linked))
        ]

    def link_rows(self) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        for parent, linked in self._links(self.published):
            for state in ("published", "configured"):  # what runs is configured too
                rows.append(
                    {"parentBotId": parent.bot_id, "linkedBotId": linked.bot_id, "state": state}
                )
        published = set(self.published)
        drafts = [pair for pair in self.drafts if pair not in published]
        for parent, linked in self._links(drafts):
            rows.append(
                {"parentBotId": parent.bot_id, "linkedBotId": linked.bot_id, "state": "configured"}
            )
        return rows

    # -- the answers ---------------------------------------------------------------------------

    def answer(self, where: AppsRoute, query: str, bots_offset: str = "rows") -> dict[str, Any]:
        params = parse_qs(query, keep_blank_values=True)
        if where.bot_id is None:
            return self._bots(params, bots_offset)
        return self._linked(where.bot_id, params)

    def _bots(self, params: dict[str, list[str]], offset_counts: str) -> dict[str, Any]:
        asked = _query_int(params, "offset", 0)
        limit = min(_query_int(params, "limit", MAX_BOTS_PAGE) or MAX_BOTS_PAGE, MAX_BOTS_PAGE)
        # What offset means is not documented: rows, pages, or (a broken server) nothing.
        offset = {"rows": asked, "pages": asked * limit, "ignored": 0}[offset_counts]
        shown = [app for app in self._order if not self.hidden(app.index)]
        parents: dict[str, list[dict[str, str]]] = {}
        for parent, linked in self._links(self.published):
            parents.setdefault(linked.bot_id, []).append(
                {"_id": parent.bot_id, "name": parent.name}
            )
        page = [
            {**app.bot, "isLinkedTo": parents.get(app.bot_id, [])}
            for app in shown[offset : offset + limit]
        ]
        return {"total": len(shown), "availableMore": offset + len(page) < len(shown), "bots": page}

    def _linked(self, bot_id: str, params: dict[str, list[str]]) -> dict[str, Any]:
        if not "".join(params.get("language", [])).strip():
            raise ApiError(400, "language is required")
        answer: dict[str, Any] = {
            "type": "unified",
            "appType": "unified",
            "isUXOUB": True,
            "isDialogGPTEnabled": False,
        }
        app = self.by_id.get(bot_id)
        if app is None:
            return answer
        published = [child for parent, child in self._links(self.published) if parent is app]
        drafts = [child for parent, child in self._links(self.drafts) if parent is app]
        configured = list(dict.fromkeys(published + drafts))
        if not configured:
            return answer  # an app that links nothing: the four keys are absent
        answer["configuredLinkedApps"] = [_entry(child) for child in configured]
        answer["publishedLinkedApps"] = [_entry(child) for child in published]
        answer["uxoUBConfigured"] = {"linkedApps": [c.bot_id for c in configured], "isUXOUB": True}
        answer["uxoUBPublished"] = {"linkedApps": [c.bot_id for c in published], "isUXOUB": True}
        return answer


def _entry(app: App) -> dict[str, Any]:
    return {
        "_id": app.bot_id,
        "name": app.name,
        "defaultLanguage": app.bot["defaultLanguage"],
        "appType": "unified",
        "type": "default",
        "status": 1,
        "isDialogGPTEnabled": False,
        "configuredVersion": app.configured_version,
        "publishedVersion": app.published_version,
    }

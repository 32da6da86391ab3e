"""The account's apps and their routing links, read once a run and shared by every stream.

Dynamic routing: a Parent app hands sessions to its linked apps, and Kore.ai bills those
sessions to the linked app; reading the Parent returns only its own. So with `bot_ids` and
`include_linked_apps`, the billing streams also read each listed app's published linked apps,
and a linked app the credentials cannot read is skipped with a warning instead of failing the
run (the `apps` stream says so: billingReadable false). An app listed in `bot_ids` that cannot
be read still fails the run: the user asked for it by name.
"""

from __future__ import annotations

import logging
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

from tap_kore_billing.apps.records import app_from_bot, bare_app, links_from_answer
from tap_kore_billing.client.api_errors import RequestFailedError
from tap_kore_billing.core.partitions import ACCOUNT_WIDE, distinct
from tap_kore_billing.core.words import counted

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from tap_kore_billing.client.api import KoreApi

GET_BOTS_PATH = "/api/public/bots?offset={offset}&limit={limit}"
GET_BOTS_LIMIT = 50  # the documented maximum
LINKED_APPS_PATH = "/api/1.1/public/bot/{bot_id}/universalbot/link?language=en"
ACCOUNT_HOLDER = "account"


class AppInventory:
    """Which apps the run reads, what it learns of them, and which it could not read."""

    def __init__(self, config: t.Mapping[str, t.Any], api: KoreApi, logger: logging.Logger) -> None:
        self.scope = str(config.get("api_scope") or "bot")
        self.configured = distinct(config.get("bot_ids"))
        # Unset or null: the documented default, on.
        self.include_linked = config.get("include_linked_apps") is not False
        # One lookup per app and none of them waits for a quota: as many at once as allowed,
        # so the billing reads start within a round trip or two.
        self._workers = max(1, int(config.get("max_workers") or 1))
        self.logger = logger
        self._calls = api.calls_for(logger)
        self._lock = threading.Lock()
        self._links: dict[str, list[dict[str, t.Any]]] | None = None
        self._bots: list[dict[str, t.Any]] | None = None
        self._tried: set[str] = set()
        self._tried_all = False
        self._refused: dict[str, str] = {}

    # --- which apps the billing streams read ------------------------------------------------

    def billing_bot_ids(self) -> list[str]:
        """The apps the billing streams read: `bot_ids`, then their published linked apps
        (empty: every app of the account, in admin scope)."""
        if not self.configured or not self.include_linked:
            return list(self.configured)
        return [*self.configured, *self.added_by_links()]

    def added_by_links(self) -> list[str]:
        """Published linked apps of the configured apps that `bot_ids` does not list."""
        if not self.include_linked:
            return []
        links = self.links_of(self.configured)
        linked = [
            link["linkedBotId"]
            for parent in self.configured
            for link in links[parent]
            if link["state"] == "published"
        ]
        return [bot for bot in distinct(linked) if bot not in self.configured]

    def reading(self, bot_ids: Iterable[str]) -> None:
        """A billing stream is about to read these apps (ACCOUNT_WIDE: all of them)."""
        with self._lock:
            for bot_id in bot_ids:
                if bot_id == ACCOUNT_WIDE:
                    self._tried_all = True
                else:
                    self._tried.add(bot_id)

    def may_skip(self, bot_id: str, error: RequestFailedError) -> bool:
        """Whether a failed read of app `bot_id` skips that app instead of ending the run: a
        403 on an app only the links added."""
        return error.status == HTTPStatus.FORBIDDEN and bot_id in self.added_by_links()

    def skips(self, bot_ids: list[str], stream: str, error: RequestFailedError) -> bool:
        """Whether a stream's failed read of these apps skips them (one linked app, HTTP 403),
        said in a warning; False: the failure ends the run."""
        if len(bot_ids) != 1 or not self.may_skip(bot_ids[0], error):
            return False
        self.refused(bot_ids[0], stream, error)
        return True

    def refused(self, bot_id: str, stream: str, error: RequestFailedError) -> None:
        """Note that the credentials may not read `bot_id`; warn the first time."""
        with self._lock:
            first = bot_id not in self._refused
            self._refused.setdefault(bot_id, str(error))
        parents = self._parents_of(bot_id)
        if first:
            self.logger.warning(
                "Linked app %s%s (routed from %s) cannot be read with these credentials "
                "(HTTP 403 on stream %s): its billing sessions and usage are missing from this "
                "run, and the apps stream marks it billingReadable false; its family does not "
                "reconcile until these credentials may read it (the run goes on; this alone "
                "does not fail it)",
                bot_id,
                self._name_in_brackets(bot_id),
                ", ".join(parents) or "a configured app",
                stream,
            )
        else:
            self.logger.info("Linked app %s: stream %s skips it too (HTTP 403)", bot_id, stream)

    # --- links ------------------------------------------------------------------------------

    def links_of(self, parents: list[str]) -> dict[str, list[dict[str, t.Any]]]:
        """Each parent's links (read once a run); an app whose links cannot be read has none,
        with a warning."""
        with self._lock:
            known = dict(self._links or {})
        missing = [p for p in parents if p not in known]
        if missing:
            with ThreadPoolExecutor(min(self._workers, len(missing))) as pool:
                answers = list(pool.map(self._read_links, missing))
            found = {parent: links for parent, (links, _) in zip(missing, answers, strict=True)}
            self._warn_refused([refusal for _, refusal in answers if refusal])
            with self._lock:
                self._links = {**(self._links or {}), **found}
                known = dict(self._links)
        return {p: known[p] for p in parents}

    def _read_links(self, bot_id: str) -> tuple[list[dict[str, t.Any]], str | None]:
        """The app's links, or none and why the API refused them."""
        where = f"Get Linked Apps of app {bot_id}"
        try:
            answer = self._calls.call(
                "GET", LINKED_APPS_PATH.format(bot_id=bot_id), None, bot_id, where=where
            )
        except RequestFailedError as exc:
            if exc.status is None:
                raise  # no answer after every retry: the run cannot tell what it misses
            return [], str(exc)
        return links_from_answer(bot_id, answer, self.logger), None

    def _warn_refused(self, refusals: list[str]) -> None:
        # One line, however many apps: admin credentials may lack the app-scope permission.
        if not refusals:
            return
        more = f" (and {counted(len(refusals) - 1, 'other app')})" if len(refusals) > 1 else ""
        self.logger.warning(
            "%s%s; their linked apps are not known this run (include_linked_apps, app_links; "
            "Get Linked Apps needs the Getlinkedbotdetails API scope)",
            refusals[0],
            more,
        )

    def link_records(self) -> list[dict[str, t.Any]]:
        """Every link of the apps the run knows: the configured ones, or the account's."""
        parents = self.configured or [app["botId"] for app in self.bots()]
        links = self.links_of(parents)
        return [link for parent in parents for link in links[parent]]

    def _parents_of(self, bot_id: str) -> list[str]:
        with self._lock:
            links = dict(self._links or {})
        return [
            parent
            for parent, found in links.items()
            if any(link["linkedBotId"] == bot_id and link["state"] == "published" for link in found)
        ]

    def _name_in_brackets(self, bot_id: str) -> str:
        with self._lock:
            links = [link for found in (self._links or {}).values() for link in found]
        name = next((link["name"] for link in links if link["linkedBotId"] == bot_id), None)
        return f" ({name})" if name else ""

    # --- apps -------------------------------------------------------------------------------

    def bots(self) -> list[dict[str, t.Any]]:
        """Every app of the account from Get Bots (admin scope), read once a run; in bot
        scope, or when Get Bots is refused, none."""
        with self._lock:
            if self._bots is not None:
                return self._bots
        bots = self._read_bots() if self.scope == "admin" else []
        with self._lock:
            self._bots = bots
        return bots

    def _read_bots(self) -> list[dict[str, t.Any]]:
        found: dict[str, dict[str, t.Any]] = {}
        offset = 0
        while True:
            where = f"Get Bots, offset {offset}"
            try:
                page = self._calls.call(
                    "GET",
                    GET_BOTS_PATH.format(offset=offset, limit=GET_BOTS_LIMIT),
                    None,
                    ACCOUNT_HOLDER,
                    where=where,
                )
            except RequestFailedError as exc:
                if exc.status is None:
                    raise
                self.logger.warning(
                    "%s; the apps stream holds only the apps bot_ids and their links name (Get "
                    "Bots needs an Admin Console app with the Role Management API scope)",
                    exc,
                )
                return []
            rows = page.get("bots")
            rows = rows if isinstance(rows, list) else []
            before = len(found)
            for row in rows:
                record = app_from_bot(row) if isinstance(row, dict) else None
                if record is not None:
                    found.setdefault(record["botId"], record)
            offset += len(rows)
            if not rows or page.get("availableMore") is not True:
                break
            if len(found) == before:
                # A server that ignores offset would page the same apps forever.
                self.logger.warning(
                    "Get Bots at offset %d sent no app not seen before while availableMore "
                    "is true; the apps stream stops paging there",
                    offset,
                )
                break
        self._check_total(page.get("total"), len(found))
        return list(found.values())

    def _check_total(self, total: object, found: int) -> None:
        if isinstance(total, int) and not isinstance(total, bool) and total > found:
            self.logger.warning(
                "Get Bots: the account has %d apps (its total), the pages held %s",
                total,
                counted(found, "distinct app"),
            )
        else:
            self.logger.info("Get Bots: %s of the account", counted(found, "app"))

    def app_records(self) -> list[dict[str, t.Any]]:
        """One `apps` record per app the run knows of, with whether it could be read."""
        apps = {app["botId"]: dict(app) for app in self.bots()}
        for bot_id in self.configured:
            apps.setdefault(bot_id, bare_app(bot_id, "bot_ids"))
        links = self.links_of(self.configured) if self.configured else {}
        for parent, found in links.items():
            for link in found:
                linked = link["linkedBotId"]
                app = apps.setdefault(linked, bare_app(linked, "linked_apps"))
                for field in ("name", "type", "defaultLanguage"):
                    app[field] = app.get(field) or link.get(field)
                if app["source"] != "get_bots" and link["state"] == "published":
                    app["isLinkedTo"] = distinct([*(app["isLinkedTo"] or []), parent])
        for app in apps.values():
            app["billingReadable"] = self._readable(app["botId"])
        return list(apps.values())

    def _readable(self, bot_id: str) -> bool | None:
        with self._lock:
            if bot_id in self._refused:
                return False
            return True if self._tried_all or bot_id in self._tried else None

"""Which apps each shard extracts, and the settings its `meltano run` gets: explicit lists, or
N shards by a stable hash of the app ID. Pure: no Dagster, no Meltano."""

from __future__ import annotations

import hashlib
import json
import typing as t
from dataclasses import dataclass

SHARDS_VARIABLE = "KORE_BILLING_SHARDS"


class ShardSettingError(ValueError):
    """A shard setting that cannot be used; the message names the setting."""


def shard_of(app_id: str, count: int) -> int:
    """The shard (0-based) an app belongs to: the same on every machine and Python (not
    `hash()`, which is salted per process), and it moves only when `count` changes."""
    digest = hashlib.sha256(app_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class ShardPlan:
    """`count` shards; `lists` holds each shard's apps when they were given explicitly."""

    count: int
    lists: tuple[tuple[str, ...], ...] = ()

    @property
    def names(self) -> list[str]:
        return [f"shard_{n}" for n in range(1, self.count + 1)]

    def apps(self, index: int, bot_ids: t.Sequence[str]) -> list[str] | None:
        """The apps of shard `index` (0-based); None: one shard, the settings' apps unchanged.
        Hashed shards split `bot_ids`, which must then be known."""
        if self.lists:
            return list(self.lists[index])
        if self.count == 1:
            return None
        if not bot_ids:
            raise ShardSettingError(
                f"{SHARDS_VARIABLE}={self.count} splits the apps of bot_ids by hash, but bot_ids "
                "is empty (in admin scope: every app of the account): list the apps in "
                "TAP_KORE_BILLING_BOT_IDS, or give each shard's apps as a list"
            )
        return [app for app in bot_ids if shard_of(app, self.count) == index]


def parse_shards(text: str | None) -> ShardPlan:
    """KORE_BILLING_SHARDS: empty (one shard), a number of shards, or a JSON list of lists of
    app IDs (one list per shard, each app in one list only)."""
    text = (text or "").strip()
    if not text:
        return ShardPlan(1)
    if text.isdigit():
        if not 1 <= int(text) <= 64:
            raise ShardSettingError(f"{SHARDS_VARIABLE}={text}: give 1 to 64 shards")
        return ShardPlan(int(text))
    try:
        lists = json.loads(text)
    except ValueError:
        lists = None
    if not (
        isinstance(lists, list)
        and lists
        and all(isinstance(apps, list) and apps for apps in lists)
        and all(isinstance(app, str) and app for apps in lists for app in apps)
    ):
        raise ShardSettingError(
            f"{SHARDS_VARIABLE}={text!r}: give a number of shards, or a JSON list of non-empty "
            'lists of app IDs, e.g. [["st-a", "st-b"], ["st-c"]]'
        )
    seen: set[str] = set()
    for app in (app for apps in lists for app in apps):
        if app in seen:
            raise ShardSettingError(
                f"{SHARDS_VARIABLE}: {app} is in two shards; keep an app in one shard only "
                "(each shard keeps its own state)"
            )
        seen.add(app)
    return ShardPlan(len(lists), tuple(tuple(apps) for apps in lists))


def shard_settings(
    plan: ShardPlan, index: int, config: t.Mapping[str, t.Any], *, concurrent: bool = True
) -> dict[str, str]:
    """The TAP_KORE_BILLING_* variables shard `index` runs with, given the tap's settings as
    Meltano resolves them: its apps, and in admin scope, when shards run at once, its part of
    the account's one quota."""
    apps = plan.apps(index, list(config.get("bot_ids") or []))
    if apps is None:
        return {}
    # Each app is read by its own shard alone: following linked apps would read them twice.
    settings = {
        "TAP_KORE_BILLING_BOT_IDS": json.dumps(apps),
        "TAP_KORE_BILLING_INCLUDE_LINKED_APPS": "false",
    }
    if config.get("api_scope") == "admin" and plan.count > 1 and concurrent:
        for name in ("requests_per_minute", "requests_per_hour"):
            limit = int(config.get(name) or 0)
            if limit:
                settings[f"TAP_KORE_BILLING_{name.upper()}"] = str(max(1, limit // plan.count))
    return settings


def linked_apps_caveat(config: t.Mapping[str, t.Any]) -> str | None:
    """What sharding changes for linked apps, when it changes anything: in bot scope the tap
    would have followed them, and a shard reads only its own apps."""
    if config.get("api_scope", "bot") == "bot" and config.get("include_linked_apps", True):
        return (
            "shards read only their own apps, so include_linked_apps is off in each: list every "
            "linked app in bot_ids (the apps stream's isLinkedTo names them) to keep their "
            "sessions"
        )
    return None

"""Partitions: the independent slices of an account, each with its own bookmark and quota."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

ACCOUNT_WIDE = "*"  # partition key for every app of the account (admin scope, no bot_ids)


@dataclass(frozen=True)
class Partition:
    """One independent slice of the data with its own bookmark: an app, maybe one channel."""

    bot_id: str
    channel: str | None
    scope: str

    @property
    def context(self) -> dict[str, str]:
        ctx = {"botId": self.bot_id}
        if self.channel is not None:
            ctx["channel"] = self.channel
        return ctx

    @property
    def quota_holder(self) -> str:
        # Kore.ai counts app-scope calls per app and admin calls per account.
        return self.bot_id if self.scope == "bot" else "account"

    def __str__(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.context.items())


def partitions_from_config(
    config: t.Mapping[str, t.Any],
    *,
    with_channels: bool = True,
    bot_ids: t.Iterable[str] | None = None,
) -> list[Partition]:
    """Every app (and channel, when the stream filters by channel) the settings ask for;
    `bot_ids`, when given, in place of the setting (with the linked apps it adds)."""
    scope = str(config["api_scope"])
    apps = distinct(config.get("bot_ids") if bot_ids is None else bot_ids) or [ACCOUNT_WIDE]
    channels: list[str | None] = [None]
    if with_channels:
        channels = [*distinct(config.get("channels"))] or [None]
    return [Partition(bot, channel, scope) for bot in apps for channel in channels]


def distinct(values: t.Iterable[str] | None) -> list[str]:
    """Trimmed, non-blank values, each once, in their order: a repeated app or channel must
    not fetch (and emit) the same sessions twice."""
    return list(dict.fromkeys(v.strip() for v in values or [] if v and v.strip()))

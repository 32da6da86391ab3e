"""The one query the report runs, in any warehouse (DuckDB, PostgreSQL, Snowflake): every row
the page needs, as text in the same columns (`kind` says what a row is), so that each warehouse
yields the same rows and the page the same words. `relation` names a model: schema-qualified for
a direct connection, `{{ ref(...) }}` through dbt."""

from __future__ import annotations

from collections.abc import Callable

COLUMNS = (
    "kind", "bot_id", "name", "period", "unit", "n1", "n2", "n3", "n4",
    "status", "id", "other", "detail", "t1", "t2", "a1", "a2", "a3",
)  # fmt: skip
# The models the page reads; a schema without one of them is named in the error.
MODELS = (
    "kore_billing__reconciliation",
    "kore_billing__family_reconciliation",
    "kore_billing__session_audit",
    "kore_billing__conversation_audit",
    "kore_billing__audit_daily",
    "stg_kore_billing__billing_sessions",
    "stg_kore_billing__apps",
    "stg_kore_billing__app_links",
)
# A column that exists only when var kore_billing_price_per_session is set.
PRICED_COLUMN = "billed_amount"


def _text(expression: str, width: int = 2000) -> str:
    return f"cast({expression} as varchar({width}))"


def _select(kind: str, values: dict[str, str]) -> str:
    cells = [f"'{kind}' as kind" if name == "kind" else "" for name in COLUMNS[:1]]
    for name in COLUMNS[1:]:
        given = values.get(name)
        cells.append(f"{_text(given) if given else _text('null')} as {name}")
    return "select " + ", ".join(cells)


def report_query(relation: Callable[[str], str], *, priced: bool) -> str:
    """Every row of the page: the reconciliation (per app, per family), the routing links, the
    apps, the audit's findings, its over-counted conversations with the billing sessions billed
    in each, and the audit per day (with amounts when `priced`)."""
    recon, family = (
        relation("kore_billing__reconciliation"),
        relation("kore_billing__family_reconciliation"),
    )
    parts = [
        _select(
            "recon",
            {
                "bot_id": "bot_id", "name": "app_name", "period": "period_start",
                "unit": "unit", "n1": "detail_count", "n2": "summary_count",
                "n3": "difference", "status": "status", "other": "granularity",
                "a1": "difference_amount" if priced else "",
            },
        ) + f" from {recon}",
        _select(
            "family",
            {
                "bot_id": "family_bot_id", "name": "family_name", "period": "period_start",
                "unit": "unit", "n1": "detail_count", "n2": "summary_count",
                "n3": "difference", "n4": "apps", "status": "status",
                "other": "granularity",
                "detail": "case when complete then 'complete' else 'incomplete' end",
            },
        ) + f" from {family}",
        _select(
            "link",
            {"bot_id": "parent_bot_id", "id": "linked_bot_id", "name": "linked_app_name"},
        ) + f" from {relation('stg_kore_billing__app_links')} where link_state = 'published'",
        _select("app", {"bot_id": "bot_id", "name": "app_name"})
        + f" from {relation('stg_kore_billing__apps')}",
        _select(
            "finding",
            {
                "bot_id": "bot_id", "name": "app_name", "period": "billing_day",
                "unit": "finding", "id": "billing_session_id",
                "other": "other_billing_session_id", "detail": "detail",
                "t1": "billing_session_started_at", "t2": "billing_session_ended_at",
                "n1": "excess_seconds",
            },
        ) + f" from {relation('kore_billing__session_audit')}",
        _select(
            "over",
            {
                "bot_id": "bot_id", "name": "app_name", "period": "billing_day",
                "unit": "status", "id": "conversation_session_id",
                "n1": "conversation_seconds", "n2": "billing_sessions",
                "n3": "expected_at_most", "n4": "excess_sessions",
                "t1": "conversation_session_started_at",
                "t2": "conversation_session_ended_at",
                "a1": "excess_amount" if priced else "",
            },
        ) + f" from {relation('kore_billing__conversation_audit')} where status = 'over_counted'",
        _select(
            "billed_in",
            {
                "bot_id": "a.bot_id", "id": "s.billing_session_id",
                "other": "a.conversation_session_id", "t1": "s.billing_session_started_at",
                "t2": "s.billing_session_ended_at",
            },
        ) + f" from {relation('kore_billing__conversation_audit')} as a"
        f" inner join {relation('stg_kore_billing__billing_sessions')} as s"
        " on s.bot_id = a.bot_id and s.conversation_session_id = a.conversation_session_id"
        " where a.status = 'over_counted'",
        _select(
            "daily",
            {
                "bot_id": "bot_id", "name": "app_name", "period": "billing_day",
                "n1": "sessions", "n2": "flagged_sessions", "n3": "excess_sessions",
                "n4": "over_counted_conversations",
                "a1": "billed_amount" if priced else "",
                "a2": "flagged_amount" if priced else "",
                "a3": "excess_amount" if priced else "",
            },
        ) + f" from {relation('kore_billing__audit_daily')}",
    ]  # fmt: skip
    return "\nunion all\n".join(parts)


def dbt_query() -> str:
    """The query for `dbt show --inline`: models by `ref`, the amounts read when the audit's
    daily model has them (dbt decides, from the warehouse's columns)."""

    def ref(model: str) -> str:
        return "{{ ref('" + model + "') }}"

    columns = (
        "{%- set daily_columns = adapter.get_columns_in_relation("
        "ref('kore_billing__audit_daily')) | map(attribute='name') | map('lower') | list -%}"
    )
    return (
        f"{columns}\n{{% if '{PRICED_COLUMN}' in daily_columns %}}\n"
        f"{report_query(ref, priced=True)}\n{{% else %}}\n"
        f"{report_query(ref, priced=False)}\n{{% endif %}}"
    )

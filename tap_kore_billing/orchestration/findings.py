"""What the reconciliation and the audit found, read back from the warehouse with `dbt show`
(one query, any warehouse dbt reaches; the code location's own DuckDB file directly, as the
report reads it, which spares a start of Meltano and dbt), as the numbers the asset checks
report."""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field

from tap_kore_billing.orchestration.dbt_command import run_dbt
from tap_kore_billing.orchestration.settings import CodeLocationSettings
from tap_kore_billing.report.dbt_show import shown_rows
from tap_kore_billing.report.warehouse import DEFAULT_SCHEMA

# dbt's headings above the message ("Runtime Error in sql_operation inline_query (...)").
TOP = 10  # IDs and rows shown in a check's metadata

# One row per closed app-period-unit that differs (a day, or an hour or a month with another
# summary_granularity), per billing session that breaks a rule, per
# over-counted conversation, and per billing session billed in one (the IDs to quote).
QUERY = """
select 'mismatch' as kind, coalesce(app_name, bot_id) as app, bot_id,
       case when granularity = 'day' then cast(cast(period_start as date) as varchar(10))
            else cast(period_start as varchar(30)) end as day,
       unit as what, cast(difference as bigint) as amount, cast(null as varchar(200)) as id
from {{ ref('kore_billing__reconciliation') }}
where status = 'mismatch'
union all
select 'finding', coalesce(app_name, bot_id), bot_id, cast(billing_day as varchar(10)), finding,
       1, billing_session_id
from {{ ref('kore_billing__session_audit') }}
union all
select 'over_counted', coalesce(app_name, bot_id), bot_id, cast(billing_day as varchar(10)),
       'over_counted', cast(excess_sessions as bigint), conversation_session_id
from {{ ref('kore_billing__conversation_audit') }}
where status = 'over_counted'
union all
select 'billed_in', coalesce(a.app_name, a.bot_id), a.bot_id, cast(a.billing_day as varchar(10)),
       a.conversation_session_id, 0, s.billing_session_id
from {{ ref('kore_billing__conversation_audit') }} as a
inner join {{ ref('stg_kore_billing__billing_sessions') }} as s
    on s.bot_id = a.bot_id and s.conversation_session_id = a.conversation_session_id
where a.status = 'over_counted'
"""


class FindingsQueryError(RuntimeError):
    """The query could not run; the message is dbt's error."""


@dataclass
class Findings:
    mismatches: list[dict[str, t.Any]] = field(default_factory=list)
    breaking: list[dict[str, t.Any]] = field(default_factory=list)
    over_counted: list[dict[str, t.Any]] = field(default_factory=list)
    # (app, conversation): the billing sessions billed in it
    billed_in: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @property
    def mismatching_app_days(self) -> int:
        """Closed app-days (app-periods) that differ; one may differ in several units."""
        return len({(row["bot_id"], row["day"]) for row in self.mismatches})

    @property
    def excess_sessions(self) -> int:
        return sum(int(row["amount"]) for row in self.over_counted)

    @property
    def count(self) -> int:
        """Findings: billing sessions that break a rule, and over-counted conversations."""
        return len(self.breaking) + len(self.over_counted)

    def mismatch_lines(self) -> list[str]:
        return [
            f"{row['app']} ({row['bot_id']}), {row['day']}, {row['what']}: "
            f"{_difference(int(row['amount']))}"
            for row in self.mismatches[:TOP]
        ]

    def finding_lines(self) -> list[str]:
        breaking = [
            f"{row['id']}: {row['what'].replace('_', ' ')} ({row['app']}, {row['day']})"
            for row in self.breaking
        ]
        over = [
            f"conversation {row['id']}: {row['amount']} billing sessions in excess "
            f"({row['app']}, {row['day']}), billed as "
            + ", ".join(self.billed_in.get((row["bot_id"], row["id"]), []))
            for row in self.over_counted
        ]
        return (breaking + over)[:TOP]

    def ids(self) -> list[str]:
        """The billing session IDs to quote: those that break a rule, then those billed in an
        over-counted conversation."""
        over = [
            i
            for row in self.over_counted
            for i in self.billed_in.get((row["bot_id"], row["id"]), [])
        ]
        return [row["id"] for row in self.breaking] + over


def _difference(amount: int) -> str:
    if amount < 0:
        return f"{-amount} more billed than found"
    return f"{amount} more found than billed"


def read_findings(settings: CodeLocationSettings) -> Findings:
    duckdb_file = settings.meltano_variables().get("TARGET_DUCKDB_FILEPATH")
    rows = _duckdb_rows(duckdb_file) if duckdb_file else _dbt_rows(settings)
    found = Findings()
    order = sorted(rows, key=lambda row: (row["day"] or "", row["app"] or "", row["id"] or ""))
    for row in order:
        if row["kind"] == "billed_in":
            found.billed_in.setdefault((row["bot_id"], row["what"]), []).append(row["id"])
            continue
        {"mismatch": found.mismatches, "finding": found.breaking}.get(
            row["kind"], found.over_counted
        ).append(row)
    return found


def _dbt_rows(settings: CodeLocationSettings) -> list[dict[str, t.Any]]:
    done = run_dbt(
        settings,
        ["show", "--inline", QUERY, "--output", "json", "--limit", "-1", "--log-format", "json"],
    )
    rows, errors = shown_rows(done.stdout)
    if done.returncode != 0 or rows is None:
        said = "; ".join(errors) or (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise FindingsQueryError(f"reading the findings with dbt show failed: {said}")
    return rows


def _duckdb_rows(path: str) -> list[dict[str, t.Any]]:
    """The query's rows from the DuckDB file dbt-duckdb built the models in (its schema is
    the package's default there, as for the report)."""
    import duckdb  # noqa: PLC0415 - only this warehouse needs it

    sql = re.sub(r"\{\{ ref\('(\w+)'\) \}\}", rf"{DEFAULT_SCHEMA}.\1", QUERY)
    try:
        with duckdb.connect(path, read_only=True) as db:
            cursor = db.execute(sql)
            names = [column[0] for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except duckdb.Error as exc:
        said = (str(exc).strip().splitlines() or ["no message"])[0]
        raise FindingsQueryError(f"reading the findings from {path} failed: {said}") from None

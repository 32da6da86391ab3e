"""The report (tap_kore_billing.report) as an asset downstream of the dbt models: one
self-contained HTML page and a CSV of the mismatches and findings, written to the code
location's folder at each run; the page's path is in the asset's metadata."""

import os

import dagster as dg
from dagster import AssetExecutionContext

from tap_kore_billing.orchestration.checks import FINDINGS_KEY
from tap_kore_billing.orchestration.settings import CodeLocationSettings
from tap_kore_billing.report.model import build
from tap_kore_billing.report.page import write_report
from tap_kore_billing.report.query import MODELS
from tap_kore_billing.report.warehouse import Fetched, ReportError, fetch_dbt, fetch_url

REPORT_KEY = dg.AssetKey(["kore_billing", "report"])
PAGE = "report.html"


def read(settings: CodeLocationSettings) -> Fetched:
    """Locally the code location's DuckDB file directly; elsewhere through the dbt utility's
    profile, as dbt built the models."""
    duckdb_file = settings.meltano_variables().get("TARGET_DUCKDB_FILEPATH")
    if duckdb_file:
        return fetch_url(f"duckdb:///{duckdb_file}?schema=analytics")
    env = {**os.environ, **settings.meltano_variables()}
    return fetch_dbt(settings.dbt_utility, settings.environment, settings.project, env)


def report_asset(settings: CodeLocationSettings) -> dg.AssetsDefinition:
    @dg.asset(
        key=REPORT_KEY,
        deps=[
            *(dg.AssetKey(model) for model in MODELS if not model.startswith("stg_")),
            FINDINGS_KEY,
        ],
        group_name="checks",
        kinds={"html"},
        description=(
            "The reconciliation and the audit as one self-contained HTML page (and a CSV of "
            "the mismatches and findings beside it), for a finance reader."
        ),
    )
    def _report(context: AssetExecutionContext) -> dg.MaterializeResult:
        try:
            fetched = read(settings)
        except ReportError as exc:
            raise dg.Failure(description=f"the report cannot read the models: {exc}") from None
        data = build(fetched.rows, priced=fetched.priced, source=fetched.source)
        written = write_report(data, settings.work_dir / PAGE)
        context.log.info(f"report: {written.page} ({written.size:,} bytes)")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(written.page)),
                "rows": dg.MetadataValue.path(str(written.csv)),
                "verdict": data.verdict(),
                "bytes": written.size,
                "seconds": round(written.seconds, 2),
            }
        )

    return _report

"""The reconciliation and the audit as asset checks of our own, on the findings asset: a closed
app-day that differs from the invoice fails the reconciliation check (ERROR), a billing session
that breaks Kore.ai's rule or an over-counted conversation the audit check (WARN). Neither
blocks: a mismatch is news about the vendor's invoice, not bad data. The same numbers are the
asset's metadata, so they plot over time."""

import dagster as dg
from dagster import AssetExecutionContext

from tap_kore_billing.orchestration.findings import (
    TOP,
    Findings,
    FindingsQueryError,
    read_findings,
)
from tap_kore_billing.orchestration.settings import CodeLocationSettings

FINDINGS_KEY = dg.AssetKey(["kore_billing", "findings"])
RECONCILIATION_CHECK = "reconciliation"
AUDIT_CHECK = "audit"
MODELS = (
    "kore_billing__reconciliation",
    "kore_billing__session_audit",
    "kore_billing__conversation_audit",
)


def findings_asset(settings: CodeLocationSettings) -> dg.AssetsDefinition:
    @dg.asset(
        key=FINDINGS_KEY,
        deps=[dg.AssetKey(model) for model in MODELS],
        group_name="checks",
        kinds={"dbt"},
        check_specs=[
            dg.AssetCheckSpec(
                RECONCILIATION_CHECK,
                asset=FINDINGS_KEY,
                blocking=False,
                description=(
                    "Every closed app-day (app-period) matches the invoice's usage summary."
                ),
            ),
            dg.AssetCheckSpec(
                AUDIT_CHECK,
                asset=FINDINGS_KEY,
                blocking=False,
                description="Every billing session follows Kore.ai's 15-minute rule.",
            ),
        ],
        description="What the reconciliation and the audit found, read back from the models.",
    )
    def _findings(context: AssetExecutionContext) -> dg.MaterializeResult:
        try:
            found = read_findings(settings)
        except FindingsQueryError as exc:
            raise dg.Failure(description=str(exc)) from None
        for line in found.mismatch_lines():
            context.log.warning(f"mismatch: {line}")
        for line in found.finding_lines():
            context.log.warning(f"audit: {line}")
        return dg.MaterializeResult(
            metadata={
                "mismatches": found.mismatching_app_days,
                "findings": found.count,
                "excess_sessions": found.excess_sessions,
            },
            check_results=[reconciliation_result(found), audit_result(found)],
        )

    return _findings


def reconciliation_result(found: Findings) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=RECONCILIATION_CHECK,
        asset_key=FINDINGS_KEY,
        passed=found.mismatching_app_days == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "mismatches": found.mismatching_app_days,
            "differences": dg.MetadataValue.md(_bullets(found.mismatch_lines())),
        },
        description=(
            "every closed app-day matches the invoice"
            if not found.mismatches
            else f"{found.mismatching_app_days} closed app-days differ from the invoice"
        ),
    )


def audit_result(found: Findings) -> dg.AssetCheckResult:
    ids = found.ids()
    return dg.AssetCheckResult(
        check_name=AUDIT_CHECK,
        asset_key=FINDINGS_KEY,
        passed=found.count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "findings": found.count,
            "excess_sessions": found.excess_sessions,
            "breaking_sessions": len(found.breaking),
            "over_counted_conversations": len(found.over_counted),
            "top_ids": dg.MetadataValue.json(ids[:TOP]),
            "details": dg.MetadataValue.md(_bullets(found.finding_lines())),
        },
        description=(
            "every billing session follows the 15-minute rule"
            if not found.count
            else f"{found.count} findings, {found.excess_sessions} billing sessions in excess: "
            "quote the IDs to Kore.ai support"
        ),
    )


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines) or "none"

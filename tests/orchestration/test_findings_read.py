"""The findings asset's read of the code location's own DuckDB file (locally, without Meltano
or dbt): a file without the package's models fails in one line that names the file and the
missing model, which the asset turns into its failure."""

from __future__ import annotations

import duckdb
import pytest
from helpers import ROOT

from tap_kore_billing.orchestration.findings import FindingsQueryError, read_findings
from tap_kore_billing.orchestration.settings import CodeLocationSettings


def test_a_duckdb_file_without_the_models_is_named_with_the_missing_model(tmp_path):
    settings = CodeLocationSettings.from_environment(
        {"MELTANO_PROJECT_ROOT": str(ROOT), "KORE_BILLING_WORK_DIR": str(tmp_path)}
    )
    database = settings.meltano_variables()["TARGET_DUCKDB_FILEPATH"]
    duckdb.connect(database).close()  # a file, with no models in it
    with pytest.raises(FindingsQueryError) as raised:
        read_findings(settings)
    [line] = str(raised.value).splitlines()
    assert database in line
    assert "kore_billing__reconciliation" in line

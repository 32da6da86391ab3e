"""The report (`kore-billing-report`): one self-contained HTML page, and a CSV beside it, of what
the dbt package's models found: the reconciliation per app and routing family, the audit of
Kore.ai's billing rule, their money when prices are set, and the IDs to quote to Kore.ai support.

It owns reading those models from a warehouse (`warehouse.py`: DuckDB or PostgreSQL by URL, any
warehouse through Meltano's dbt utility and its profile), the rows as the page needs them
(`model.py`, the verdict's words in `verdict.py`), the charts (`charts.py`: Vega-Lite rendered to
SVG in Python, no script in the page), the page and the CSV (`page.py`) and the command line
(`cli.py`). It may import `core` only; the tap never imports it, the Dagster code location does.
"""

"""Singer tap for Kore.ai XO Platform billing sessions.

Packages, lowest first; a package imports only those below it (tests/unit/test_module_map.py):
`core`; `client`, `run`, `state`, `sessions`; `summary`, `apps`; `streams`; then `tap.py` and
`cli.py`. Beside them: `sandbox` (the emulator, imported by none of them) and `orchestration`
(the Dagster code location, which nothing of the tap imports)."""

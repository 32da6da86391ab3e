"""`python -m tap_kore_billing` runs the tap."""

from tap_kore_billing.cli import main

main()

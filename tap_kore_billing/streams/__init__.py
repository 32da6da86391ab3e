"""The tap's streams: only what differs between them; what the billing streams share lives in
`base.py`. Imports every package below it, never `tap.py`, `cli.py` or the orchestration."""

from tap_kore_billing.streams.apps import AppLinksStream, AppsStream
from tap_kore_billing.streams.billing_sessions import BillingSessionsStream
from tap_kore_billing.streams.billing_usage_summary import BillingUsageSummaryStream

__all__ = ["AppLinksStream", "AppsStream", "BillingSessionsStream", "BillingUsageSummaryStream"]

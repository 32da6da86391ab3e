"""The tap's streams; what the billing streams share lives in `base.py`."""

from tap_kore_billing.streams.apps import AppLinksStream, AppsStream
from tap_kore_billing.streams.billing_sessions import BillingSessionsStream
from tap_kore_billing.streams.billing_usage_summary import BillingUsageSummaryStream

__all__ = ["AppLinksStream", "AppsStream", "BillingSessionsStream", "BillingUsageSummaryStream"]

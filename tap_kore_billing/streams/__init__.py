"""The tap's streams; what they share lives in `base.py`."""

from tap_kore_billing.streams.billing_sessions import BillingSessionsStream
from tap_kore_billing.streams.billing_usage_summary import BillingUsageSummaryStream

__all__ = ["BillingSessionsStream", "BillingUsageSummaryStream"]

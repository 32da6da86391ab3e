"""The tap's streams; what they share lives in `tap_kore_billing.client`."""

from tap_kore_billing.streams.billing_sessions import BillingSessionsStream
from tap_kore_billing.streams.billing_usage_summary import BillingUsageSummaryStream

__all__ = ["BillingSessionsStream", "BillingUsageSummaryStream"]

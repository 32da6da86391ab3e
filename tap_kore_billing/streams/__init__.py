"""The tap's streams; what they share lives in `tap_kore_billing.client`."""

from tap_kore_billing.streams.billing_sessions import BillingSessionsStream

__all__ = ["BillingSessionsStream"]

"""A local emulator of Kore.ai's Billing Sessions API, for testing and benchmarking the tap."""

from tap_kore_billing.sandbox.server import Sandbox

__all__ = ["Sandbox"]

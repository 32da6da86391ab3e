"""The one Kore.ai API client the tap owns: HTTP sessions, JWT auth, the quota limiter, retries
and what a failed call says, the page size asked for, and how many requests run at once across
partitions. Imports only `core`."""

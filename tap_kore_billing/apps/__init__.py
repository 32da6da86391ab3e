"""The run's app inventory (apps and routing links, read once) and its answers as records.
Imports `core` and `client`."""

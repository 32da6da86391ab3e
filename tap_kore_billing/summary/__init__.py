"""The usage summary report job: its HTTP (start, poll, read our result) in `job.py`, what is
decided without I/O (buckets, windows, statuses, parsing) in `report.py`. Imports `core` and
`client`."""

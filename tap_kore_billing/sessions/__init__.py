"""The billing sessions, without I/O: one window's pages, its rows (de-duplicated, filtered,
tallied) and the rows as records. Imports only `core`."""

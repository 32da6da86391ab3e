"""The Singer state's bookmarks: a partition's bookmark (what the API has shown, what to
re-read), the summary's period bookmark, and the sessions stream's bookmarks during a run.
Imports only `core`."""

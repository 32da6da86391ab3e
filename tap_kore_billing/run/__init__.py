"""What a run is given and what it gives out: the settings and their checks, the --config and
--state files, stop signals, the progress lines, and the Singer writer with its page-at-a-time
output. Imports only `core`."""

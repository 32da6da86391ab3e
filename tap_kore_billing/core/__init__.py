"""What every layer shares and nothing of its own imports: the tap's error, counts in words,
the API's datetimes, window arithmetic, and the partitions (apps, channels) a run reads. Imports
nothing else from the package."""

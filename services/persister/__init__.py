"""The persister: reads the valid stream as group `persister` and appends to the history."""

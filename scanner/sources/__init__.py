"""Sources turn a target into a Snapshot: an immutable list of artifacts with Readers."""

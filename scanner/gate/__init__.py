"""The CI gate: declared model dependencies, their lockfile, and `modelward check`."""

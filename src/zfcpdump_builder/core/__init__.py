"""What every stage and verb shares: errors, events, the object store, paths, ownership, host tools."""

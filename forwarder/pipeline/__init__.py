"""Fan-out, ordered acknowledgements and the daemon lifecycle."""

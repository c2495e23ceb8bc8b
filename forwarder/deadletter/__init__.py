"""The dead-letter path: what can never be delivered, kept with the reason."""

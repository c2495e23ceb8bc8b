"""Configuration: YAML loading, substitution, secrets and validation."""

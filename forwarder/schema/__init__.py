"""Normalization of raw API records into the common schema."""

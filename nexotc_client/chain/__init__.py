"""Thin wrappers over the deployed contracts, one module per contract."""

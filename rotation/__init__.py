"""Secrets Manager rotation Lambda: one dispatcher, pluggable strategies."""

"""Pulumi components and the typed catalog/config model of the secrets platform."""

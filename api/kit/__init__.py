"""Shared plumbing of the API: settings, errors, request dependencies."""

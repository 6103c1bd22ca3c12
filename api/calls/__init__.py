"""Calls for projects: the catalogue (its import is in `api.imports`)."""

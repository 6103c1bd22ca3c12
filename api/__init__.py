"""Maillage's FastAPI application, services, CLI and templates."""

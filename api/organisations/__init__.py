"""Organisations: profiles, statements, territories worked on."""

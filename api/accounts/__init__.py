"""Accounts, roles and bearer tokens: who may see and change what."""

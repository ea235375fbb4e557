"""Tokens, passwords, guards and rate limits."""

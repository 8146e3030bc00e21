"""Collectors: each turns one kind of source into item rows, without touching the store."""

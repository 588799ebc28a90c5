"""Filters: the steps that keep or drop a document (blocklist, language ID, quality)."""

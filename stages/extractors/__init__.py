"""Extractors: HTML to text."""

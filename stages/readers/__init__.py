"""Readers: WARC and WET files to documents, every record read counted."""

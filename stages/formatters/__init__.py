"""Formatters: steps that rewrite a document's text."""

"""Recipes: FineWeb's own steps and FineWeb-2's per-language profiles."""

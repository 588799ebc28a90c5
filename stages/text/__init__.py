"""Text helpers shared by several steps: word splitting and n-gram counts."""

"""A trained quality classifier: `ccpipe classifier train` (fastText, DCLM-style)."""

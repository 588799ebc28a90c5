"""One module per pipeline stage, each a small datatrove step."""

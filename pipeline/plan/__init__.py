"""The plan of a run: its config, its input files, its phases of datatrove steps, and its identity."""

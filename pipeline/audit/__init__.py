"""Why documents were kept or removed: DuckDB queries over a run's decision ledger, and the HTML report."""

"""Writers: what the pipeline writes (documents, parquet, the decision ledger)."""

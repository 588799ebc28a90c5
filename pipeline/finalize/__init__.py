"""Once the phases are done: `.bin` shards, the ledger, the summary, and publishing."""

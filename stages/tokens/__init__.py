"""Tokenization: BPE vocabularies, token ids and llm.c's `.bin` shards."""

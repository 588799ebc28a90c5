"""Helpers every step may use: atomic file writes and digests, remote input, loading once per process, and the patches of other libraries (`patches.apply`)."""

"""Handing a release to a trainer: the `.bin` loader, and a smoke test that trains on it."""

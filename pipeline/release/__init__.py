"""Dataset releases: build, manifest, verify, diff and the dataset card."""

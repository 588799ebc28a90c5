"""The small core every part of `pipeline/` may use: where a run's files live, and the run's errors."""

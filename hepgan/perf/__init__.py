"""Performance: metrics against truth and against the classic tracks, benchmarks, the report."""

"""Random and edge-case stimulus for the testbenches and tests (golden/ keeps only the truth)."""

"""Random and adversarial stimulus for the tests and benchmarks (NumPy only; golden/ keeps only the truth)."""

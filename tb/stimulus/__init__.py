"""Random and adversarial stimulus for the tests and benchmarks (NumPy only; the golden models stay truth only)."""

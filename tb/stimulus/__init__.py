"""Stimulus generators for the testbenches and benchmarks: what to send, never what to expect (that is golden/)."""

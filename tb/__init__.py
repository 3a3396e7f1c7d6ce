"""cocotb testbenches (``test_<block>.py``) and the shared layer: runner, stream driver, scoreboard."""

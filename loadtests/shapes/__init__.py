"""Load shapes: steady, step, spike."""

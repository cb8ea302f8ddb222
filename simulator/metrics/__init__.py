"""Recording raw facts during a run and the documented schema of the result tables."""

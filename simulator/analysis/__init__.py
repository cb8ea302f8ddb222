"""Statistics, summaries and plots computed from result tables (no simulation here)."""

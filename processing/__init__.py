"""Windowed aggregates and anomaly detection over NumPy arrays (not built yet: issue 4)."""

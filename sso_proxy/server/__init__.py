"""The process: serve, signals, reload, workers, the live runtime."""

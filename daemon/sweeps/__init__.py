"""Timed work: one module per kind of sweep, run together by `run.run(app, now)`."""

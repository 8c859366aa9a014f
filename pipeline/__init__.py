"""csat-triage pipeline: stage entry points (one module per stage) and the CLI."""

__version__ = "0.1.0"

"""Benchmarks of the pipeline stages at helpdesk scale (see ``benchmarks/run.py``)."""

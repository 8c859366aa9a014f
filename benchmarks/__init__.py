"""Benchmarks of the pipeline stages at helpdesk scale.

Entry point ``benchmarks/run.py``; the modules and what each does are listed in ``benchmarks/README.md``.
"""

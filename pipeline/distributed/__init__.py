"""The Dask engine (``--engine dask``): the same feature, model and scoring functions, run per partition.

Importing this package does not import Dask; each module imports it where it is used, so a
one-machine run (``--engine pandas``, the default) never loads it.
"""

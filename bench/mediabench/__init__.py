"""The pieces of ``bench/media_bench.py``, one concept a module."""

"""Benchmarks: measure a team (and the harness itself) on standard problem sets.

- :mod:`tessera.bench.humaneval`: HumanEval pass@1, judged by the coder's sandbox and test runner.
"""

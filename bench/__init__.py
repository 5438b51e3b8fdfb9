"""Benchmarks: `make bench`. Speeds are reported as ratios against baselines measured in the same run."""

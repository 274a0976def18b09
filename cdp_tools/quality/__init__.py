"""Stitching quality against ground truth: a generator, the scoring, ``cdp bench quality``."""

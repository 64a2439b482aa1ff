"""Judging a model and its data: the TF-IDF baselines, and the label audit."""

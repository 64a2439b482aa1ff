"""Judging a model and its data: evaluate and calibrate as library functions, and the label audit."""

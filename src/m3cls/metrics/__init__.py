"""Scores in plain numpy, no torch: classification metrics, multi-label and regression scores, temperature
scaling, and the decision rules (operating points, abstention) that turn probabilities into decisions."""

"""Prediction: the Classifier (load once, predict many), windows and segments of long texts, word-occlusion
explanations, and prediction across torchrun processes."""

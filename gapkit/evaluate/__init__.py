"""Evaluation: metrics, uncertainty calibration, plots and data summaries."""

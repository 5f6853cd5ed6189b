"""Evaluation: full-ranking metrics, experiments over several models, reports and plots."""

"""Scores of generated samples."""

"""Pretrained generator files shipped with ganzoo and their manifest (``manifest.json``)."""

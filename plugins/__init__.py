"""Built-in ganzoo plugins. Each is registered through the ``ganzoo`` entry-point group in
``pyproject.toml``, exactly as a third party's plugin would be."""

"""The ``ganzoo`` command line. Heavy imports (torch) happen inside command bodies only."""

"""The names of the metrics ``ganzoo eval`` computes itself and the kinds of samples it scores, apart from
:mod:`ganzoo.evaluation` (which imports numpy) so that the registry can refuse a plugin's metric that takes one of
those names without loading it. No import here."""

#: The metrics eval computes itself; the others, ganzoo's ``toy`` scores included, come from plugins through
#: ``register_metrics`` (:class:`ganzoo.specs.MetricSpec`).
METRICS = ("fid", "kid", "is", "pr", "digits")
#: The kinds of samples eval scores.
SAMPLE_KINDS = ("images", "vectors")

"""How many discriminator steps come before each generator step.

``d_steps`` throughout (Algorithm 1's n_critic in WGAN and WGAN-GP), unless ``warmup_d_steps`` is
set: then the first ``WARMUP_GENERATOR_STEPS`` generator steps, and every ``BOOST_EVERY``-th one
after them, wait for that many discriminator steps instead. This is the schedule of the WGAN
authors' code (100 critic steps there), which keeps the critic near its optimum early on, when
the Wasserstein estimate it gives G is furthest from the truth. Its paper's Algorithm 1 has no
such schedule, so it is off (0) unless the user sets it.

Each epoch's last batch ends with a generator step, however few discriminator steps came
before it, as the authors' inner loop ends with the data; so the count starts again at 0 with
each epoch, and a schedule longer than an epoch still trains G once per epoch.
"""

from __future__ import annotations

from typing import Any

#: Generator steps at the start of a run that each wait for ``warmup_d_steps`` discriminator steps.
WARMUP_GENERATOR_STEPS = 25
#: After the warm-up, every this-many-th generator step waits for ``warmup_d_steps`` as well.
BOOST_EVERY = 500


def d_steps_before(generator_steps_done: int, config: dict[str, Any]) -> int:
    """Discriminator steps to take before the generator step that follows ``generator_steps_done`` of them."""
    warmup = int(config.get("warmup_d_steps") or 0)
    if warmup and (generator_steps_done < WARMUP_GENERATOR_STEPS or generator_steps_done % BOOST_EVERY == 0):
        return warmup
    return int(config["d_steps"])

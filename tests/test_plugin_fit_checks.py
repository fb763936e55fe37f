"""A third-party plugin whose networks, data or loss do not fit the run: one sentence naming the plugin, no traceback."""

from __future__ import annotations

from conftest import PLUGIN_TEMPLATE
from test_plugin_mistakes import _train, install  # noqa: F401  (install: a fixture)

LOSS_PLUGIN = PLUGIN_TEMPLATE + '''
@hookimpl
def register_losses(register):
    from ganzoo.specs import LossSpec

    class NotALoss:
        pass

    def raising(config):
        return {}["no loss today"]

    register(LossSpec("not-a-loss", "returns an object of its own", lambda config: NotALoss()))
    register(LossSpec("raising-loss", "raises in its factory", raising))
'''

CONDITIONAL_PLUGIN = PLUGIN_TEMPLATE.replace('task="unconditional"', 'task="conditional"').replace(
    'DatasetInfo("vectors", dim=2), {"real": points})',
    'DatasetInfo("vectors", dim=2, num_classes=2), {"real": points, "label": torch.arange(256) % 2})').replace(
    'DatasetInfo("vectors", dim=2), load))', 'DatasetInfo("vectors", dim=2, num_classes=2), load))') + '''
@hookimpl
def generate(model, generator, noise, labels):
    if model.family == "tiny":
        return generator(noise)
'''


def test_a_discriminator_built_for_other_data_is_refused_before_training(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE.replace('_mlp(config["dim"], config["width"], 1)', '_mlp(5, config["width"], 1)'))
    said = _train(cli, tmp_path, "tinygan")
    assert said.startswith("Error: Plugin 'mistakes' from ganzoo-mistakes raised RuntimeError: ") and said.endswith(
        "in the discriminator of model 'tinygan' given samples of shape 2; fix the plugin or report it to its authors "
        "(GANZOO_DEBUG=1 shows the traceback)."), said
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # refused while building, before any step


def test_a_dataset_whose_samples_are_not_the_declared_shape_is_one_sentence(cli, install, tmp_path):
    install(PLUGIN_TEMPLATE.replace("torch.randn(256, 2, generator=gen) * 0.1 + torch.tensor([1.0, -1.0])",
                                    "torch.randn(256, 5, generator=gen)"))
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: The load function of dataset 'tiny-blobs' of plugin 'mistakes' from ganzoo-mistakes returned data "
        "that does not match its DatasetInfo: its samples have shape 5, but it declares 2-D points; return samples "
        "of the declared shape, or declare the shape they have.")


def test_a_loss_factory_that_returns_something_else_or_raises_is_one_sentence(cli, install, tmp_path):
    install(LOSS_PLUGIN)
    assert _train(cli, tmp_path, "tinygan", "--loss", "not-a-loss") == (
        "Error: The factory of --loss not-a-loss (plugin 'mistakes' from ganzoo-mistakes) returned a NotALoss, not a "
        "ganzoo.losses.AdversarialLoss; it must return an instance of a subclass of AdversarialLoss.")
    assert _train(cli, tmp_path, "tinygan", "--loss", "raising-loss", "--overwrite") == (
        "Error: Plugin 'mistakes' from ganzoo-mistakes raised KeyError: 'no loss today' in the factory of --loss "
        "raising-loss; fix the plugin or report it to its authors (GANZOO_DEBUG=1 shows the traceback).")


def test_a_conditional_model_whose_plugin_computes_no_losses_is_told_to(cli, install, tmp_path):
    install(CONDITIONAL_PLUGIN)
    assert _train(cli, tmp_path, "tinygan") == (
        "Error: No plugin computes the losses of the conditional model 'tinygan' (plugin 'mistakes' from "
        "ganzoo-mistakes): ganzoo's standard step trains unconditional models only, so the plugin must implement "
        "compute_losses for it.")

"""``python -m ganzoo``: the ``ganzoo`` command, for launchers such as torchrun that start modules."""

from ganzoo.cli.main import cli

if __name__ == "__main__":
    cli(prog_name="ganzoo")

"""`pointillist` command line: one entry point, each service contributes its subcommands.

Subcommands are imported lazily, so `pointillist simulate ...` does not import torch and a
service whose extra is not installed only fails when its own command is used.
"""

from __future__ import annotations

import importlib

import click

from pointillist import __version__
from pointillist.core.errors import PointillistError

#: command name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "simulate": "pointillist.simulator.cli:simulate",
    "localize": "pointillist.localizer.cli:localize",
    "localizer": "pointillist.localizer.train_cli:localizer",
    "cluster": "pointillist.clusterer.cli:cluster",
    "clusterer": "pointillist.clusterer.train_cli:clusterer",
    "vae": "pointillist.vae.cli:vae",
    "reconstruct": "pointillist.reconstructor.cli:reconstruct",
    "run": "pointillist.pipeline:run_command",
    "up": "pointillist.stack:up_command",
    "demo": "pointillist.demo:demo_command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when used; project errors become CLI errors."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise click.ClickException(
                f"'{name}' needs a component that is not installed ({exc.name}); "
                "install pointillist[all]"
            ) from None
        return getattr(module, attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PointillistError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="pointillist")
def main() -> None:
    """Pointillist: single-molecule localization microscopy analysis."""


if __name__ == "__main__":
    main()

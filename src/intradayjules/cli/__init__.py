"""The ``intradayjules`` command: a thin Typer layer over the Python API.

Each concern registers its own sub-app from a module in this package; heavy imports (torch, mlflow,
ray) happen inside the commands, so ``intradayjules --help`` stays fast.
"""

from __future__ import annotations

import typer

from .. import __version__
from . import (cluster_cmd, config_cmd, crsp_cmd, data_cmd, env_cmd, features_cmd, models_cmd, paper_cmd, run_cmd,
               survivorship_cmd, train_cmd, tune_cmd, workdir_cmd)

app = typer.Typer(
    name="intradayjules",
    help="Risk-aware reinforcement-learning research for intraday trading.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"intradayjules {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """Risk-aware reinforcement-learning research for intraday trading."""
app.add_typer(config_cmd.app, name="config")
app.add_typer(data_cmd.app, name="data")
app.add_typer(features_cmd.app, name="features")
app.add_typer(env_cmd.app, name="env")
app.command("init")(config_cmd.init)
app.command("run")(run_cmd.run)
app.command("report")(run_cmd.report)
app.command("train")(train_cmd.train)
app.command("evaluate")(train_cmd.evaluate)
app.add_typer(models_cmd.app, name="models")
app.command("tune")(tune_cmd.tune)
app.add_typer(cluster_cmd.app, name="cluster")
app.add_typer(train_cmd.experiment_app, name="experiment")
app.add_typer(crsp_cmd.app, name="crsp")
app.add_typer(survivorship_cmd.app, name="survivorship")
app.add_typer(workdir_cmd.app, name="workdir")
app.command("paper")(paper_cmd.paper)


def main() -> None:
    app()

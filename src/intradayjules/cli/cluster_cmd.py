"""``intradayjules cluster head|join|status|stop``: spare machines as a Ray cluster (see docs/cluster.md).

Every command runs ``ray`` with the same environment (token auth with the project's token file,
usage stats off): see ``intradayjules.tune.cluster``. With ``--node-ip`` every port of the node binds to
that address (``--no-pin-bind``: Ray's own all-interface binds). ``--block`` keeps the node in the
foreground: Ctrl-C, SIGTERM or SIGHUP to this command stops the node it started (and only that one).
Also ``python -m intradayjules.cli.cluster_cmd``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import IntradayJulesError
from .common import console, fail

app = typer.Typer(help="Run a Ray cluster on spare machines for `intradayjules tune --backend ray`.",
                  no_args_is_help=True)

TokenOpt = typer.Option(None, "--token-file", help="auth token file (default ~/.intradayjules/ray/auth_token)")
PinOpt = typer.Option(True, "--pin-bind/--no-pin-bind",
                      help="with --node-ip: bind every port of this node to that address only (default)")


@app.command()
def head(
    port: int = typer.Option(6379, "--port", "-p", help="GCS port workers and drivers connect to"),
    node_ip: str | None = typer.Option(None, "--node-ip", help="address other machines reach this one at"),
    num_cpus: int | None = typer.Option(None, "--num-cpus", min=0),
    num_gpus: int | None = typer.Option(None, "--num-gpus", min=0),
    temp_dir: str | None = typer.Option(None, "--temp-dir", help="Ray session files (default /tmp/ray)"),
    block: bool = typer.Option(False, "--block", help="stay in the foreground; Ctrl-C or SIGTERM stops the node"),
    token_file: Path | None = TokenOpt,
    pin_bind: bool = PinOpt,
) -> None:
    """Start the head node (creates the auth token file if it does not exist)."""
    from ..tune import cluster

    try:
        tok = cluster.ensure_token(cluster.token_path(token_file))
        cmd = cluster.head_command(port, node_ip, num_cpus, num_gpus, temp_dir, block)
        if _start(cmd, tok, block, node_ip if pin_bind else None):
            return
    except IntradayJulesError as e:
        raise fail(str(e)) from None
    where = f"{node_ip or '<this-host>'}:{port}"
    console.print(f"[green]head node started[/] at {where}", highlight=False)
    console.print(f"1. copy the token to each worker machine: scp {tok} WORKER:{tok}", highlight=False)
    console.print(f"2. on each worker: intradayjules cluster join {where}", highlight=False)
    console.print(f"3. search: intradayjules tune --backend ray --address {where}", highlight=False)


@app.command()
def join(
    address: str = typer.Argument(..., help="HOST:PORT of the head node"),
    node_ip: str | None = typer.Option(None, "--node-ip", help="this machine's address as the head sees it"),
    num_cpus: int | None = typer.Option(None, "--num-cpus", min=0),
    num_gpus: int | None = typer.Option(None, "--num-gpus", min=0),
    temp_dir: str | None = typer.Option(None, "--temp-dir"),
    block: bool = typer.Option(False, "--block", help="stay in the foreground; Ctrl-C or SIGTERM stops the node"),
    token_file: Path | None = TokenOpt,
    pin_bind: bool = PinOpt,
) -> None:
    """Join this machine to the cluster whose head is at HOST:PORT (needs the head's token file)."""
    from ..tune import cluster

    try:
        tok = cluster.ensure_token(cluster.token_path(token_file), create=False)
        cmd = cluster.join_command(address, node_ip, num_cpus, num_gpus, temp_dir, block)
        if _start(cmd, tok, block, node_ip if pin_bind else None):
            return
    except IntradayJulesError as e:
        raise fail(str(e)) from None
    console.print(f"[green]joined[/] {address}", highlight=False)


@app.command()
def status(
    address: str = typer.Argument("auto", help="HOST:PORT of the head, or auto (a node on this machine)"),
    token_file: Path | None = TokenOpt,
) -> None:
    """Nodes, resources in use and pending demands (``ray status``)."""
    from ..tune import cluster

    try:
        if address != "auto":
            cluster.check_address(address)
        out = cluster.run_ray([cluster.ray_exe(), "status", f"--address={address}"], token_file)
    except IntradayJulesError as e:
        raise fail(str(e)) from None
    typer.echo(out)


@app.command()
def stop(force: bool = typer.Option(False, "--force", help="SIGKILL instead of SIGTERM")) -> None:
    """Stop every Ray process of this user on this machine (``ray stop``)."""
    from ..tune import cluster

    cmd = [cluster.ray_exe(), "stop"] + (["--force"] if force else [])
    try:
        out = cluster.run_ray(cmd, auth=False)
    except IntradayJulesError as e:
        raise fail(str(e)) from None
    typer.echo(out)


def _start(cmd: list[str], tok: Path, block: bool, bind_ip: str | None) -> bool:
    """Run a ``ray start`` command: in the foreground with ``--block`` (True once it ended), else detached."""
    from ..tune import cluster

    if block:
        _foreground(cmd, tok, bind_ip)
        return True
    cluster.run_ray(cmd, tok, bind_ip=bind_ip)
    return False


def _foreground(cmd: list[str], tok: Path, bind_ip: str | None) -> None:
    """``ray start --block`` as a child in its own session; SIGINT (Ctrl-C), SIGTERM and SIGHUP to this
    process stop it (``stop_node``: SIGTERM, which tears its node down, then SIGKILL of its group)."""
    import signal

    from ..tune import cluster

    proc = cluster.start_node(cmd, tok, bind_ip=bind_ip, log=None, foreground=True)

    def stop(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second signal must not cut it short
            signal.signal(sig, signal.SIG_IGN)
        cluster.stop_node(proc)
        code = 0
    raise typer.Exit(code)


if __name__ == "__main__":
    app()

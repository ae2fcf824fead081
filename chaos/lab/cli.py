"""`chaos lab ...`: bring the embedded lab up and down, list its weaknesses, show its status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from chaos.friendly import UserPath
from chaos.friendly import friendly as _friendly
from chaos.friendly import say as _say


@click.group()
def lab() -> None:
    """The embedded lab: real etcd masters in network namespaces on this machine."""


@lab.command("up")
@click.option("--profile", default="resilient", show_default=True, help="resilient or fragile")
@click.option(
    "--weakness",
    "weaknesses",
    multiple=True,
    metavar="NAME",
    help="a seeded weakness on the resilient profile (repeatable); `chaos lab weaknesses` lists them",
)
@click.option(
    "--topology",
    type=UserPath(),
    default=None,
    metavar="FILE",
    help="run a system of your own, declared in a topology file, instead of the shop "
    "(--profile then names one of its variants); docs/your-system.md",
)
@_friendly
def lab_up(profile: str, weaknesses: tuple[str, ...], topology: Path | None) -> None:
    """Bring the lab up (idempotent; clears a stale lab first)."""
    from chaos.lab import Lab

    Lab().up(profile, progress=_say, weaknesses=weaknesses, topology=topology)


@lab.command("weaknesses")
@_friendly
def lab_weaknesses() -> None:
    """The weakness catalogue: what each weakness changes and which property it breaks."""
    from rich.console import Console

    from chaos.lab.weaknesses import CATALOGUE

    Console().print(
        _table(
            "lab weaknesses (--lab-weakness NAME / chaos lab up --weakness NAME)",
            ("weakness", "part", "breaks", "what is different"),
            [(w.name, w.scope, w.breaks, w.description) for w in CATALOGUE],
        )
    )


@lab.command("down")
@_friendly
def lab_down() -> None:
    """Remove every process, namespace, bridge, mount and loop device of the lab."""
    from chaos.lab import Lab

    Lab().down(progress=_say)


@lab.command("status")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@_friendly
def lab_status(as_json: bool) -> None:
    """Show every node: masters (address, process, health, leader), services and volumes."""
    from chaos.lab import Lab

    st = Lab().status(traces=True)
    if as_json:
        click.echo(json.dumps(st.__dict__, indent=2))
        return
    if not st.up:
        click.echo("lab is down")
        return
    from rich.console import Console

    console = Console()

    def show(table: Any, empty: str) -> None:
        # a topology may have no masters or no volumes: one line says so, not an empty table
        if table.row_count or not st.topology:
            console.print(table)
        else:
            click.echo(empty)

    show(
        _table(
            f"lab ({st.topology or ' + '.join([st.profile or '', *st.weaknesses])}), "
            f"leader: {st.leader or 'none'}",
            ("master", "address", "pid", "running", "healthy", "leader", "volume"),
            [
                (
                    m["name"],
                    m["address"],
                    str(m["pid"]),
                    _yes(m["running"]),
                    _yes(m["healthy"]),
                    "*" if m["leader"] else "",
                    m["volume"],
                )
                for m in st.members
            ],
        ),
        f"lab ({st.topology}): no masters",
    )
    console.print(
        _table(
            f"services (entry point: {st.entry or 'none'})",
            ("service", "kind", "cluster", "address", "pid", "running", "healthy"),
            [
                (
                    s["name"],
                    s["kind"],
                    s["cluster"] or "-",
                    f"{s['address']}:{s['port']}" if s["address"] else "(root namespace)",
                    str(s["pid"]),
                    _yes(s["running"]),
                    _yes(s["healthy"]),
                )
                for s in st.services
            ],
        )
    )
    console.print(
        _table(
            "volumes (ext4 disk served by the storage daemon)",
            ("volume", "mount", "daemon pid", "running", "fault", "free MiB", "problem"),
            [
                (
                    v["name"],
                    v["mount"],
                    str(v["pid"]),
                    _yes(v["running"]),
                    v["fault"],
                    "-" if v["free_mb"] is None else f"{v['free_mb']:g}",
                    v["problem"] or "",
                )
                for v in st.volumes
            ],
        ),
        "no volumes",
    )
    for p in st.problems:
        click.echo(f"problem: {p}")
    for trace in st.fault_traces:
        click.echo(f"fault trace: {trace} (a fault in force now, or left by a killed run: `chaos recover`)")


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    return table


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"

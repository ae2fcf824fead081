"""iptables rules inside lab namespaces, each tagged with the fault that added it so a
revert removes exactly its own rules (and nothing else)."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass

from chaos.errors import PlatformError
from chaos.lab.net import lab_netns


@dataclass(frozen=True)
class Rule:
    netns: str
    chain: str
    spec: tuple[str, ...]
    table: str = "filter"


def tagged(tag: str) -> tuple[str, ...]:
    return ("-m", "comment", "--comment", f"chaos:{tag}")


def rules_tagged(netns: str, prefix: str = "chaos:") -> list[str]:
    """Every rule in ``netns`` carrying a chaos tag (for checks that nothing is left)."""
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "iptables-save"], capture_output=True, text=True, check=False
    )
    return [line for line in out.stdout.splitlines() if prefix in line]


def _restore(netns: str, text: str) -> None:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "iptables-restore", "-w", "--noflush"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise PlatformError(f"iptables-restore in {netns} failed: {out.stderr.strip()}")


def add_all(rules: list[Rule]) -> None:
    """Add rules with one iptables-restore per namespace (one call instead of one per rule)."""
    by_ns: dict[str, dict[str, list[Rule]]] = {}
    for r in rules:
        by_ns.setdefault(r.netns, {}).setdefault(r.table, []).append(r)
    for ns, tables in by_ns.items():
        text = "".join(
            f"*{table}\n" + "".join(f"-A {r.chain} {shlex.join(r.spec)}\n" for r in rs) + "COMMIT\n"
            for table, rs in tables.items()
        )
        _restore(ns, text)


def delete_tagged(netns: list[str], tag: str) -> int:
    """Delete every rule tagged ``chaos:<tag>`` in the given namespaces; idempotent (a
    namespace that no longer exists took its rules with it). Returns how many were removed."""
    removed = 0
    present = set(lab_netns())
    for ns in netns:
        if ns not in present:
            continue
        saved = subprocess.run(
            ["ip", "netns", "exec", ns, "iptables-save"], capture_output=True, text=True, check=False
        ).stdout
        table = ""
        lines_by_table: dict[str, list[str]] = {}
        for line in saved.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith("-A ") and f"chaos:{tag}" in line:
                lines_by_table.setdefault(table, []).append("-D " + line[3:])
        if lines_by_table:
            _restore(
                ns, "".join(f"*{t}\n" + "\n".join(ls) + "\nCOMMIT\n" for t, ls in lines_by_table.items())
            )
            removed += sum(len(ls) for ls in lines_by_table.values())
    return removed

"""Lab network faults: partitions (iptables in the nodes' namespaces) and degraded links (loss,
resets, bandwidth, latency through the fault proxy).

Every change is journaled before it is made, tagged so a revert removes exactly its own
rules, watched by the dead man's switch, and verified before the fault is reported in force.
"""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos.context import RunContext
from chaos.errors import ConfigError
from chaos.fault import not_in_effect
from chaos.journal import register_undo
from chaos.lab import procs
from chaos.lab.cutcheck import leaks, refused
from chaos.lab.iptables import Rule, add_all, delete_tagged, rules_tagged, tagged
from chaos.lab.lab import Lab
from chaos.lab.labfault import MIN_SAMPLED_RATE, LabFault, sample_budget
from chaos.lab.nsexec import can_connect, run_in
from chaos.lab.procs import Proc
from chaos.platform import MAX_LATENCY, LinkFault
from chaos.wait import wait_until

DROP_RULES = "lab.iptables.delete"
STOP_PROC = "lab.process.stop"
TC_QDISC = "lab.tc.delete"
PROXY_PORT_OFFSET = 10000
FAULT_PROXY = Path(__file__).with_name("faultproxy.py")


_RESET = ("REJECT", "--reject-with", "tcp-reset")
SAMPLE_BATCH = 8


def _random(probability: float) -> tuple[str, ...]:
    return ("-m", "statistic", "--mode", "random", "--probability", f"{probability:.4f}")


def _undo_rules(rules: list[Rule], tag: str) -> dict[str, Any]:
    return {"tag": tag, "netns": sorted({r.netns for r in rules}), "count": len(rules)}


@register_undo(DROP_RULES)
def _drop_rules(undo: dict[str, Any]) -> None:
    delete_tagged(undo["netns"], undo["tag"])


@register_undo(STOP_PROC)
def _stop_proc(undo: dict[str, Any]) -> None:
    """Stop the process the fault started: by the marker it was journaled with before it was
    spawned (or, in entries older than the marker, by pid and start time)."""
    if "marker" in undo:
        for proc in procs.marked(undo["marker"]):
            procs.kill(proc)
    else:
        procs.kill(Proc(undo["pid"], undo["start"]))


@register_undo(TC_QDISC)
def _tc_delete(undo: dict[str, Any]) -> None:
    ns = undo["netns"]
    if not Path(f"/run/netns/{ns}").exists():
        return
    shown = subprocess.run(
        ["ip", "netns", "exec", ns, "tc", "qdisc", "show", "dev", "eth0"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    if "tbf" in shown:
        subprocess.run(
            ["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root"],
            capture_output=True,
            check=True,
        )


# -- partitions ---------------------------------------------------------------------------------


class Partition(LabFault):
    """Cut nodes apart: for every cut (A, B), no node of A reaches a node of B and back.
    ``groups`` cuts every pair of groups; ``cuts`` names the pairs explicitly (a bridge)."""

    kind = "partition"

    def __init__(
        self,
        ctx: RunContext,
        lab: Lab,
        groups: list[list[str]] | None = None,
        label: str = "",
        cuts: list[tuple[list[str], list[str]]] | None = None,
    ) -> None:
        super().__init__(ctx, lab)
        self.groups = [list(g) for g in groups or []]
        self.cuts = [(list(a), list(b)) for a, b in cuts or []]
        if groups is not None:
            self.cuts += [
                (self.groups[i], self.groups[j])
                for i in range(len(self.groups))
                for j in range(i + 1, len(self.groups))
            ]
        self.label = label
        self.rules: list[Rule] = []

    def describe(self) -> str:
        if self.groups:
            shown = " | ".join(",".join(g) for g in self.groups)
        else:
            shown = "; ".join(f"{','.join(a)} x {','.join(b)}" for a, b in self.cuts)
        return f"partition {self.label + ': ' if self.label else ''}{shown}"

    def details(self) -> dict[str, Any]:
        return {"cuts": self.cuts, "rules": len(self.rules)}

    def prepare(self) -> None:
        nodes = self._endpoints()
        problems = []
        if self.groups and len(self.groups) < 2:
            problems.append("a partition needs at least two groups of nodes")
        if not self.cuts and not problems:
            problems.append("a partition needs at least one cut between two groups of nodes")
        named = {n for a, b in self.cuts for n in a + b} | {n for g in self.groups for n in g}
        problems += [
            f"unknown node {n!r}; nodes are: {', '.join(sorted(nodes))}" for n in sorted(named - set(nodes))
        ]
        for a, b in self.cuts:
            if not a or not b:
                problems.append("every group of a partition needs at least one node")
            if set(a) & set(b):
                problems.append(
                    f"node(s) {', '.join(sorted(set(a) & set(b)))} on both sides of a cut; "
                    "groups must not overlap"
                )
        if problems:
            raise ConfigError(sorted(set(problems), key=problems.index))
        # One side of a cut is enough: a node that drops everything from and to the other side
        # cuts both directions (each lab node has one address). The smaller side holds the
        # rules, so isolating one node loads and later removes rules in one namespace, not 20.
        pairs = set()
        for a, b in self.cuts:
            near, far = (a, b) if len(a) <= len(b) else (b, a)
            pairs |= {(x, y) for x in near for y in far}
        for x, y in sorted(pairs):
            addr = nodes[y][0]
            self.rules.append(Rule(f"chaos-{x}", "INPUT", ("-s", addr, "-j", "DROP", *tagged(self.tag))))
            self.rules.append(Rule(f"chaos-{x}", "OUTPUT", ("-d", addr, "-j", "DROP", *tagged(self.tag))))

    def inject(self) -> None:
        self.journaled(DROP_RULES, _undo_rules(self.rules, self.tag), f"remove rules of {self.describe()}")
        add_all(self.rules)

    def verify(self) -> None:
        found = leaks([(x, y) for a, b in self.cuts for x in a for y in b], self._endpoints())
        if found:
            raise not_in_effect(self, f"still connected: {', '.join(found)}")


# -- degraded links --------------------------------------------------------------------------------


class Degrade(LabFault):
    """Degrade what ``src`` nodes send to the service on ``dst``: latency (with jitter) through
    the fault proxy, packet loss, connection resets, and a bandwidth cap on ``dst``'s replies."""

    kind = "degrade"

    def __init__(self, ctx: RunContext, lab: Lab, src: list[str], dst: str, link: LinkFault) -> None:
        super().__init__(ctx, lab)
        self.src, self.dst, self.link = list(src), dst, link
        self.baseline_s: float | None = None
        self.measured_s: float | None = None
        self.sampled: dict[str, Any] = {}

    def describe(self) -> str:
        return f"degrade {','.join(self.src)} -> {self.dst}: {self.link.describe()}"

    def details(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "dst": self.dst,
            "latency_s": self.link.latency,
            "loss": self.link.loss,
            "reset": self.link.reset,
            "baseline_s": self.baseline_s,
            "measured_s": self.measured_s,
            "sampled": self.sampled,
        }

    def prepare(self) -> None:
        nodes = self._endpoints()
        st = self.lab.state()
        assert st is not None
        svc_names = {s.name for s in st.services}
        problems = []
        if self.dst not in svc_names:
            problems.append(f"unknown destination {self.dst!r}; services are: {', '.join(sorted(svc_names))}")
        if not self.src:
            problems.append("a link needs at least one source node")
        problems += [
            f"unknown source node {s!r}; nodes are: {', '.join(sorted(nodes))}"
            for s in self.src
            if s not in nodes
        ]
        if self.dst in self.src:
            problems.append(f"{self.dst} cannot be both source and destination of a link")
        problems += self.link.problems()
        if self.link.latency and self.dst in svc_names and not st.service(self.dst).health_path:
            problems.append(
                f"latency to {self.dst} is measured by an HTTP request and {self.dst} has no HTTP "
                "path to ask (in a topology file: ready: {http: /path})"
            )
        if problems:
            raise ConfigError(problems)
        if self.link.latency:
            self.baseline_s = self._request_time()

    def _request_time(self, enough: Callable[[float], bool] = lambda _: False) -> float:
        """Seconds for one HTTP request from the first source to the destination, sent from
        inside the source's namespace over a fresh connection: the quickest of three, or of
        fewer once one is ``enough`` (a slow outlier only ever adds time, so one request that
        already shows the asked latency settles it; one that does not is tried again)."""
        st = self.lab.state()
        assert st is not None
        svc = st.service(self.dst)

        def once() -> float:
            t0 = time.perf_counter()
            with socket.create_connection((svc.address, svc.port), timeout=MAX_LATENCY + 5) as s:
                s.sendall(f"GET {svc.health_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                while s.recv(65536):
                    pass
            return time.perf_counter() - t0

        best = float("inf")
        answered = 0
        # loss and resets act on every packet a request sends (about four): on a link that also
        # drops or resets, a refused or retransmitted request is the fault at work, not the
        # measurement failing, so requests go on until one shows the latency, up to enough of
        # them that one link in 10,000 would spoil every one
        spoiled = 1 - (1 - max(self.link.loss, self.link.reset)) ** 4
        tries = 3 if spoiled == 0 else min(100, max(3, math.ceil(math.log(1e-4) / math.log(spoiled))))
        for tried in range(1, tries + 1):
            try:
                took = run_in(f"chaos-{self.src[0]}", once)
            except OSError:
                if spoiled == 0 or (tried == tries and not answered):
                    raise
                continue
            answered += 1
            best = min(best, took)
            if enough(best) or (spoiled == 0 and answered == 3):
                break
        return best

    def inject(self) -> None:
        st = self.lab.state()
        assert st is not None
        svc = st.service(self.dst)
        ns = f"chaos-{self.dst}"
        port = str(svc.port)
        rules: list[Rule] = []
        for s in self.src:
            addr = self._endpoints()[s][0]
            match = ("-s", addr, "-p", "tcp", "--dport", port)
            # with latency too, a new connection reaches INPUT redirected to the fault proxy's
            # port: match the port it was sent to, so loss and resets apply to it as well
            sent_to = ("-s", addr, "-p", "tcp", "-m", "conntrack", "--ctorigdstport", port)
            for probability, target in ((self.link.loss, ("DROP",)), (self.link.reset, _RESET)):
                if probability:
                    rules.append(
                        Rule(ns, "INPUT", (*sent_to, *_random(probability), "-j", *target, *tagged(self.tag)))
                    )
            if self.link.latency:
                proxy = str(svc.port + PROXY_PORT_OFFSET)
                rules.append(
                    Rule(
                        ns,
                        "PREROUTING",
                        (*match, "-j", "REDIRECT", "--to-ports", proxy, *tagged(self.tag)),
                        table="nat",
                    )
                )
                # connections opened before the redirect bypass it (conntrack): reset them so
                # the caller reconnects through the proxy
                rules.append(
                    Rule(
                        ns, "INPUT", (*match, "-j", "REJECT", "--reject-with", "tcp-reset", *tagged(self.tag))
                    )
                )
        if self.link.bandwidth_kbit:
            self.journaled(TC_QDISC, {"netns": ns}, f"remove bandwidth cap on {self.dst}")
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "tc",
                    "qdisc",
                    "add",
                    "dev",
                    "eth0",
                    "root",
                    "tbf",
                    "rate",
                    f"{self.link.bandwidth_kbit}kbit",
                    "burst",
                    "32kbit",
                    "latency",
                    "400ms",
                ],
                check=True,
                capture_output=True,
            )
        if self.link.latency:
            proxy_port = svc.port + PROXY_PORT_OFFSET
            marker = f"--tag={self.tag}"
            self.journaled(STOP_PROC, {"marker": marker}, f"stop fault proxy on {self.dst}")
            procs.spawn(
                [
                    # run by path in isolated mode, without site: it needs only the standard
                    # library, and its start is part of this fault's time to take effect
                    sys.executable,
                    "-I",
                    "-S",
                    str(FAULT_PROXY),
                    "--listen",
                    f"{svc.address}:{proxy_port}",
                    "--upstream",
                    f"{svc.address}:{svc.port}",
                    "--latency",
                    str(self.link.latency),
                    "--jitter",
                    str(self.link.jitter),
                    marker,
                ],
                self.lab.logs / f"faultproxy-{self.dst}.log",
                netns=ns,
            )
            wait_until(
                lambda: can_connect(ns, svc.address, proxy_port),
                timeout=10,
                interval=0.002,
                what="the fault proxy to listen",
            )
        self.journaled(DROP_RULES, _undo_rules(rules, self.tag), f"remove rules of {self.describe()}")
        add_all(rules)

    def _verify_refusals(self) -> None:
        """A lossy or resetting link drops or refuses some connections: open them from the first
        source, a few at once beside a positive control (as a cut is checked), until one is
        (as flaky storage is sampled until an operation fails). A link whose rules are gone,
        or do not match its traffic, connects every time and fails here."""
        rate = max(self.link.loss, self.link.reset)
        if rate < MIN_SAMPLED_RATE:
            # too rare to sample in a verification's time: the rules in force are the evidence
            if not rules_tagged(f"chaos-{self.dst}", f"chaos:{self.tag}"):
                raise not_in_effect(self, f"no rule of this fault in {self.dst}'s namespace")
            self.sampled = {"tried": 0, "note": "rate too low to sample; its rules are in force"}
            return
        budget = sample_budget(rate)
        tried = failed = 0
        while tried < budget and not failed:
            # a few at a time: a burst larger than the server's accept backlog would have its
            # own connections dropped, which is not this fault
            batch = min(SAMPLE_BATCH, budget - tried)
            got = refused(self.src[0], self.dst, self._endpoints(), batch)
            if got is None:
                raise not_in_effect(self, f"{self.dst} does not answer even from outside the link")
            tried, failed = tried + batch, got
        self.sampled = {"tried": tried, "refused": failed}
        if not failed:
            raise not_in_effect(
                self, f"{self.src[0]} opened {tried} connections to {self.dst} and none was dropped or reset"
            )

    def verify(self) -> None:
        if self.link.loss or self.link.reset:
            self._verify_refusals()
        if self.link.latency:

            def within(measured: float) -> bool:
                added = measured - (self.baseline_s or 0.0)
                return abs(added - self.link.latency) <= 0.2 * self.link.latency + self.link.jitter

            try:
                self.measured_s = self._request_time(within)
            except OSError as exc:
                raise not_in_effect(self, f"requests through the fault proxy fail: {exc}") from exc
            added = self.measured_s - (self.baseline_s or 0.0)
            if not within(self.measured_s):
                raise not_in_effect(
                    self,
                    f"added latency measured {added * 1000:.1f} ms, "
                    f"asked {self.link.latency * 1000:g} ms (±20%)",
                )
        if self.link.bandwidth_kbit:
            shown = subprocess.run(
                ["ip", "netns", "exec", f"chaos-{self.dst}", "tc", "qdisc", "show", "dev", "eth0"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            if "tbf" not in shown:
                raise not_in_effect(self, "no tbf qdisc on the destination's interface")


# -- killing a service -----------------------------------------------------------------------------

"""A fencing watchdog on the masters: the ``self-fencing`` weakness.

    python -m chaos.lab.fencing --state-dir DIR --after 3

Every 200 ms it asks each running etcd member who leads; a member that has known no leader
for ``--after`` seconds (cut off from its quorum) is killed, and nothing restarts it. Fencing
an isolated node is a real pattern (STONITH, watchdog reboots); doing it without a way back
leaves a member that never catches up after the partition heals.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import httpx

from chaos.lab.lab import Lab
from chaos.lab.procs import kill

PERIOD = 0.2


def has_leader(http: httpx.Client, url: str) -> bool:
    try:
        resp = http.post(f"{url}/v3/maintenance/status", json={}, timeout=0.3)
        return resp.status_code == 200 and int(resp.json().get("leader", 0)) != 0
    except (httpx.HTTPError, ValueError):
        return False


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m chaos.lab.fencing")
    ap.add_argument("--state-dir", required=True, type=Path)
    ap.add_argument("--after", type=float, default=3.0, help="seconds without a leader before fencing")
    args = ap.parse_args()
    lab = Lab(args.state_dir)
    http = httpx.Client()
    leaderless: dict[str, float] = {}
    while True:
        st = lab.state()
        now = time.monotonic()
        for m in st.members if st else ():
            if not m.proc.alive() or has_leader(http, m.client_url):
                leaderless.pop(m.name, None)
                continue
            since = leaderless.setdefault(m.name, now)
            if now - since >= args.after:
                print(f"fencing etcd {m.name} (pid {m.pid}): no leader for {now - since:.1f} s", flush=True)
                kill(m.proc)
                leaderless.pop(m.name, None)
        time.sleep(PERIOD)


if __name__ == "__main__":
    main()

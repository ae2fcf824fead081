"""`python -m chaos.lab.workload gateway|inventory --listen ADDR:PORT ...`"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from chaos.lab.workload.choices import CONFIG_MODES, GATEWAY_FLAWS, INVENTORY_FLAWS, POOLS, RETRIES, WARMUPS


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m chaos.lab.workload")
    sub = ap.add_subparsers(dest="service", required=True)
    gw = sub.add_parser("gateway")
    gw.add_argument("--cluster", required=True)
    gw.add_argument("--inventory", required=True, help="inventory base URL")
    gw.add_argument("--etcd", required=True, help="comma-separated etcd client URLs")
    gw.add_argument("--no-breaker", action="store_true", help="call inventory without a circuit breaker")
    gw.add_argument("--no-fallback", action="store_true", help="fail an order when inventory fails")
    gw.add_argument("--inventory-timeout", type=float, default=0.2, help="seconds (default 0.2)")
    gw.add_argument("--fail-max", type=int, default=3, help="failures that open the breaker (default 3)")
    gw.add_argument("--reset-s", type=float, default=3.0, help="seconds the breaker stays open (default 3)")
    gw.add_argument("--flaw", choices=GATEWAY_FLAWS, default="", help="a gray failure")
    gw.add_argument("--cold", choices=[w for w in WARMUPS if w], default="", help="start cold (a reserve)")
    gw.add_argument(
        "--retries",
        choices=RETRIES,
        default="budget",
        help="catalogue reads of inventory: retried out of a 10%% budget with backoff (default), or "
        "up to five times at once",
    )
    gw.add_argument(
        "--pools",
        choices=POOLS,
        default="bulkhead",
        help="recommendations in a bulkhead of their own, shed when it is full (default), or every "
        "request kind in one shared pool",
    )
    gw.add_argument(
        "--config",
        choices=CONFIG_MODES,
        default="last-known",
        help="when the config centre is unreachable: serve the last known configuration (default), "
        "refuse once it is 3 s old (fail-closed), or stop refreshing for good (frozen)",
    )
    inv = sub.add_parser("inventory")
    inv.add_argument("--data-dir", required=True, type=Path)
    inv.add_argument("--state-file", type=Path, help="what must outlive a restart (off the data volume)")
    inv.add_argument("--flaw", action="append", default=[], choices=INVENTORY_FLAWS, help="a storage flaw")
    for p in (gw, inv):
        p.add_argument("--listen", required=True, help="ADDR:PORT")
        p.add_argument("--replica", required=True)
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")

    # only the service asked for: the inventory has no use for the gateway's HTTP client
    from chaos.lab.workload.server import serve

    if args.service == "gateway":
        from chaos.lab.workload import gateway

        app = gateway.build(
            cluster=args.cluster,
            replica=args.replica,
            inventory_url=args.inventory,
            etcd_urls=args.etcd.split(","),
            breaker=not args.no_breaker,
            fallback=not args.no_fallback,
            inventory_timeout=args.inventory_timeout,
            fail_max=args.fail_max,
            reset_s=args.reset_s,
            flaw=args.flaw,
            cold=args.cold,
            retries=args.retries,
            pools=args.pools,
            config=args.config,
        )
    else:
        from chaos.lab.workload import inventory

        app = inventory.build(args.data_dir, args.replica, flaws=tuple(args.flaw), state_file=args.state_file)
    server = serve(app, host, int(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{args.service} {args.replica} listening on {args.listen}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

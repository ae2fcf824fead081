"""`python -m chaos.lab.workload gateway|inventory --listen ADDR:PORT ...`"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m chaos.lab.workload")
    sub = ap.add_subparsers(dest="service", required=True)
    gw = sub.add_parser("gateway")
    gw.add_argument("--cluster", required=True)
    gw.add_argument("--inventory", required=True, help="inventory base URL")
    gw.add_argument("--etcd", required=True, help="comma-separated etcd client URLs")
    gw.add_argument("--no-breaker", action="store_true", help="call inventory directly (fragile profile)")
    inv = sub.add_parser("inventory")
    inv.add_argument("--data-dir", required=True, type=Path)
    inv.add_argument(
        "--write-behind",
        action="store_true",
        help="no fsync, acknowledge failed writes, read from disk (fragile profile)",
    )
    for p in (gw, inv):
        p.add_argument("--listen", required=True, help="ADDR:PORT")
        p.add_argument("--replica", required=True)
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")

    from chaos.lab.workload import gateway, inventory
    from chaos.lab.workload.server import serve

    if args.service == "gateway":
        app = gateway.build(
            cluster=args.cluster,
            replica=args.replica,
            inventory_url=args.inventory,
            etcd_urls=args.etcd.split(","),
            breaker=not args.no_breaker,
        )
    else:
        app = inventory.build(args.data_dir, args.replica, durable=not args.write_behind)
    server = serve(app, host, int(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{args.service} {args.replica} listening on {args.listen}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

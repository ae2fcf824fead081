"""Prometheus configuration: scrape every workload service each second."""

from __future__ import annotations

import json

from chaos.lab.topology import Service


def prometheus_config(targets: list[Service]) -> str:
    scraped = [t for t in targets if t.kind in ("gateway", "inventory")]
    static = [
        {
            "targets": [f"{t.address}:{t.port}"],
            "labels": {"node": t.name, "cluster": t.cluster, "kind": t.kind},
        }
        for t in scraped
    ]
    # YAML is a superset of JSON: no YAML library needed to write it
    return json.dumps(
        {
            "global": {"scrape_interval": "1s", "scrape_timeout": "800ms", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "workload", "static_configs": static}],
        },
        indent=2,
    )

"""Locustfile for a spike on the lab workload's non-critical path: shoppers asking for
recommendations through the entry point. A 429 (shed: the gateways protect their critical
path) is an answer, not a failure."""

import os

from locust import FastHttpUser, constant_throughput, task


class Recommended(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("CHAOS_LOAD_USER_RPS", "2")))
    connection_timeout = 2.0
    network_timeout = 5.0

    @task
    def recommendations(self) -> None:
        with self.client.get("/recommendations", name="/recommendations", catch_response=True) as resp:
            if resp.status_code == 429:
                resp.success()

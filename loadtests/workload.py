"""Locustfile for the lab's sample workload: shoppers placing orders through the entry point.

Each user issues CHAOS_LOAD_USER_RPS requests per second (constant throughput), so the
total rate is bounded by users x that rate. Run by chaos.load as a subprocess.
"""

import os
import random

from locust import FastHttpUser, constant_throughput, task


class Shopper(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("CHAOS_LOAD_USER_RPS", "2")))
    connection_timeout = 2.0
    network_timeout = 5.0

    @task(3)
    def order(self) -> None:
        self.client.post(f"/orders?sku=sku-{random.randint(1, 50)}", name="/orders")

    @task(1)
    def browse(self) -> None:
        self.client.get("/", name="/")

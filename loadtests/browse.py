"""Locustfile for engine benchmarks: a cheap read (GET /) so the load engine, not the
workload's writes, is what gets measured."""

import os

from locust import FastHttpUser, constant_throughput, task


class Browser(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("CHAOS_LOAD_USER_RPS", "2")))

    @task
    def browse(self) -> None:
        self.client.get("/", name="/")

"""Steady: ramp to CHAOS_LOAD_USERS at CHAOS_LOAD_SPAWN_RATE, hold until CHAOS_LOAD_DURATION."""

import os

from locust import LoadTestShape


class Steady(LoadTestShape):
    users = int(os.environ["CHAOS_LOAD_USERS"])
    duration = float(os.environ["CHAOS_LOAD_DURATION"])
    spawn_rate = float(os.environ.get("CHAOS_LOAD_SPAWN_RATE") or users)

    def tick(self):
        if self.get_run_time() >= self.duration:
            return None
        return self.users, self.spawn_rate

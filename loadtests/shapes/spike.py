"""Spike: CHAOS_LOAD_BASE_USERS, then CHAOS_LOAD_USERS from CHAOS_LOAD_SPIKE_AT for
CHAOS_LOAD_SPIKE_FOR seconds (reached within about a second), then back to the base."""

import os

from locust import LoadTestShape


class Spike(LoadTestShape):
    users = int(os.environ["CHAOS_LOAD_USERS"])
    duration = float(os.environ["CHAOS_LOAD_DURATION"])
    base = int(os.environ.get("CHAOS_LOAD_BASE_USERS") or max(1, users // 3))
    spike_at = float(os.environ.get("CHAOS_LOAD_SPIKE_AT") or duration / 3)
    spike_for = float(os.environ.get("CHAOS_LOAD_SPIKE_FOR") or duration / 3)

    def tick(self):
        t = self.get_run_time()
        if t >= self.duration:
            return None
        in_spike = self.spike_at <= t < self.spike_at + self.spike_for
        return (self.users if in_spike else self.base), float(self.users)

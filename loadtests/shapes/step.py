"""Step: CHAOS_LOAD_STEPS equal steps up to CHAOS_LOAD_USERS over CHAOS_LOAD_DURATION."""

import math
import os

from locust import LoadTestShape


class Step(LoadTestShape):
    users = int(os.environ["CHAOS_LOAD_USERS"])
    duration = float(os.environ["CHAOS_LOAD_DURATION"])
    steps = int(os.environ.get("CHAOS_LOAD_STEPS") or 3)

    def tick(self):
        t = self.get_run_time()
        if t >= self.duration:
            return None
        step = min(self.steps, math.floor(t / (self.duration / self.steps)) + 1)
        return max(1, round(self.users * step / self.steps)), float(self.users)

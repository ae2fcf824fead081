"""The ``load`` fixture's loads: each started with the platform's engine against its entry
point, and a load spike as a fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos.context import RunContext
from chaos.errors import FaultNotInEffect
from chaos.fault import Fault
from chaos.load.local import Load
from chaos.load.run import LoadEngine, LoadRun
from chaos.load.spec import LoadSpec, locustfile_path


class Spike(Fault):
    """A load spike as a fault: entering starts an extra Locust run on top of the steady load,
    leaving stops it. Its span on the timeline is the experiment's "during" window. Nothing
    is journaled: a load stops by itself at its run time."""

    kind = "spike"

    def __init__(self, run: LoadRun) -> None:
        super().__init__(run.ctx)
        self.run = run

    def describe(self) -> str:
        s = self.run.spec
        return f"load spike: +{s.users} users x {s.user_rps:g} req/s for {s.duration:g} s"

    def details(self) -> dict[str, Any]:
        return {"users": self.run.spec.users, "user_rps": self.run.spec.user_rps}

    def prepare(self) -> None:
        self.run.spec.validate()

    def inject(self) -> None:
        self.run.start()

    def verify(self) -> None:
        if not self.run.running:
            raise FaultNotInEffect(f"{self.describe()}: locust is not running")

    def revert(self) -> None:
        self.run.stop(quiet=True)  # ending the spike early is the point
        super().revert()


class Loads:
    """Starts loads for one experiment (the ``load`` fixture): locustfiles are found relative to
    the project root, the host defaults to the platform's entry point."""

    def __init__(
        self,
        ctx: RunContext,
        host: str,
        root: Path,
        engine: LoadEngine = Load,
    ) -> None:
        self.ctx, self.host, self.root, self.engine = ctx, host, root, engine
        self.started: list[LoadRun] = []

    def __call__(
        self,
        *,
        users: int = 10,
        duration: float = 30.0,
        shape: str = "steady",
        user_rps: float = 2.0,
        workers: int = 1,
        locustfile: str = "workload",
        host: str | None = None,
        spawn_rate: float | None = None,
        **shape_env: str,
    ) -> LoadRun:
        spec = LoadSpec(
            locustfile=locustfile_path(locustfile, self.root),
            host=host or self.host,
            users=users,
            duration=duration,
            shape=shape,
            user_rps=user_rps,
            workers=workers,
            spawn_rate=spawn_rate,
            shape_env={f"CHAOS_LOAD_{k.upper()}": str(v) for k, v in shape_env.items()},
        )
        run = self.engine(self.ctx, spec, f"load{len(self.started) + 1 if self.started else ''}")
        self.started.append(run)
        return run

    def spike(self, **kwargs: Any) -> Spike:
        """A load spike on top of what runs already, as a fault (see ``Spike``)."""
        return Spike(self(**kwargs))

    def stop_all(self) -> None:
        """Stop every load still running (a load that died raises LoadError saying so)."""
        for run in self.started:
            run.stop()

"""How the command line reports our errors: one clear line (or one per problem) and a
non-zero exit, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from chaos.errors import ChaosError, ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn our errors into one clear line and a non-zero exit, never a traceback."""

    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            if len(exc.problems) == 1:
                click.echo(f"chaos: error: {exc}", err=True)
            else:
                click.echo(f"chaos: error: {len(exc.problems)} problems:", err=True)
                for problem in exc.problems:
                    click.echo(f"  {problem}", err=True)
            sys.exit(2)
        except ChaosError as exc:
            click.echo(f"chaos: error: {exc}", err=True)
            if exc.__cause__ is not None and isinstance(exc.__cause__, ExceptionGroup):
                for sub in exc.__cause__.exceptions:
                    click.echo(f"  - {sub}", err=True)
            sys.exit(1)

    return run  # type: ignore[return-value]


def say(msg: str) -> None:
    click.echo(msg)


class UserPath(click.Path):
    """A path the user names: one no file can have (a NUL byte, too long) is a usage error."""

    def __init__(self, *, file_okay: bool = True) -> None:
        super().__init__(path_type=Path, file_okay=file_okay)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from chaos.userfiles import path_problem

        problem = path_problem(value)
        if problem:
            self.fail(f"not a usable path: {problem}", param, ctx)
        return super().convert(value, param, ctx)

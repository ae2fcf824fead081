"""Reading a file a user named (a plan, a topology, a schedule, a clusters file): whatever keeps
it from being read is a ConfigError saying which file and why, never a traceback."""

from __future__ import annotations

from pathlib import Path


def read_user_file(path: Path, what: str) -> str:
    from chaos.errors import ConfigError

    check_path(path, what)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a directory, not a {what} file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text (UTF-8) {what} file: byte {exc.start} is not text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read this {what} file: {exc.strerror or exc}") from None


NAME_MAX = 255  # bytes in one name of a path (Linux)
PATH_MAX = 4096  # bytes in a whole path


def path_problem(path: Path | str) -> str | None:
    """Why no file can have this name (a NUL byte, a name or path longer than Linux allows,
    text that has no bytes on disk), or None: found before any call that would raise for it."""
    import os

    text = str(path)
    if "\0" in text:
        return "a NUL byte in the name"
    try:
        whole = os.fsencode(text)
        longest = max((len(os.fsencode(part)) for part in Path(text).parts), default=0)
    except UnicodeEncodeError:
        return "characters a file name cannot hold"
    if len(whole) >= PATH_MAX:
        return f"{len(whole)} bytes long, more than a path may be ({PATH_MAX - 1})"
    if longest > NAME_MAX:
        return f"a name of {longest} bytes, more than one may be ({NAME_MAX})"
    return None


def check_path(path: Path | str, what: str) -> None:
    from chaos.errors import ConfigError

    problem = path_problem(path)
    if problem:
        shown = str(path) if len(str(path)) <= 80 else str(path)[:77] + "..."
        raise ConfigError(f"{shown!r}: not a usable {what} path: {problem}")

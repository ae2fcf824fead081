"""Reading a file a user named (a plan, a topology, a schedule, a clusters file): whatever keeps
it from being read is a ConfigError saying which file and why, never a traceback."""

from __future__ import annotations

from pathlib import Path


def read_user_file(path: Path, what: str) -> str:
    from chaos.errors import ConfigError

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
    except ValueError as exc:  # a NUL in the name, which no file can have
        raise ConfigError(f"{str(path)!r}: not a usable path for a {what} file ({exc})") from None

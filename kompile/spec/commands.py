"""What kompile reads from a component's command line: a web server's graceful timeout, a Celery
worker's task time limit and embedded beat, and checks that go through the broker."""

from __future__ import annotations

import re

# celery subcommands that send a message through the broker and wait for the workers' answers
_REMOTE_CONTROL = re.compile(r"\bcelery\b.*\b(inspect|control|status|call|purge)\b")


def through_broker(command: tuple[str, ...] | list[str]) -> bool:
    """Whether a check runs a celery command that goes through the broker (`celery inspect ping`,
    `celery status`): in a broker outage it fails in every pod at once."""
    return bool(_REMOTE_CONTROL.search(" ".join(str(part) for part in command)))


def _words(argv) -> list[str]:
    """The command's words, also those inside a shell string (`sh -c "celery ... -B"`)."""
    return [word for arg in argv for word in str(arg).split()]


def celery_time_limit(argv: list[str]) -> int | None:
    """The hard task time limit a celery worker command sets (--time-limit N or --time-limit=N), in
    whole seconds rounded up; None when it sets none."""
    argv = _words(argv)
    for index, arg in enumerate(argv):
        text = None
        if arg.startswith("--time-limit="):
            text = arg.partition("=")[2]
        elif arg == "--time-limit" and index + 1 < len(argv):
            text = argv[index + 1]
        if text is not None:
            try:
                seconds = float(text)
            except ValueError:
                return None
            return int(-(-seconds // 1)) if seconds == seconds and 0 < seconds < 1e6 else None
    return None


def runs_embedded_beat(argv: list[str]) -> bool:
    """A celery worker started with -B/--beat (alone or among other short flags, as -BE)."""
    words = _words(argv)
    return any(w == "celery" or w.endswith("/celery") for w in words) and any(
        word in ("-B", "--beat") or re.fullmatch(r"-[A-Za-z]*B[A-Za-z]*", word) for word in words
    )


def _option(words: list[str], name: str) -> str | None:
    """The value of --name N or --name=N (the last one wins, as argument parsers take it)."""
    found = None
    for index, word in enumerate(words):
        if word.startswith(f"{name}="):
            found = word.partition("=")[2]
        elif word == name and index + 1 < len(words):
            found = words[index + 1]
    return found


def _seconds(text: str | None) -> int | None:
    try:
        seconds = float(text) if text is not None else None
    except ValueError:
        return None
    return int(-(-seconds // 1)) if seconds is not None and 0 <= seconds < 1e6 else None


def graceful_timeout(argv: list[str], gunicorn_cmd_args: str, default: int) -> int:
    """How long the web server takes to stop once told to: gunicorn's --graceful-timeout (its command line
    wins over GUNICORN_CMD_ARGS), uvicorn's --timeout-graceful-shutdown, else default."""
    words = _words(argv)
    program = next(
        (
            w.rpartition("/")[2]
            for w in words
            if not w.startswith("-")
            and "=" not in w
            and w.rpartition("/")[2] in ("gunicorn", "uvicorn", "daphne", "hypercorn")
        ),
        None,
    )
    if program == "gunicorn":
        given = _seconds(_option(words, "--graceful-timeout"))
        if given is None:
            given = _seconds(_option(gunicorn_cmd_args.split(), "--graceful-timeout"))
        return default if given is None else given
    if program == "uvicorn":
        given = _seconds(_option(words, "--timeout-graceful-shutdown"))
        return default if given is None else given
    if program == "hypercorn":
        given = _seconds(_option(words, "--graceful-timeout"))
        return default if given is None else given
    return default

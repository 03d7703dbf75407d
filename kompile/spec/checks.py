"""Value checks that need more than a pattern: CIDR blocks, time zones, cron schedules, `latest`."""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re

from kompile.errors import Code
from kompile.spec.types import shown

# ---------------------------------------------------------------------------------------------
# Value checks that need more than a pattern.


def check_cidr(value: str):
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        hint = None
        try:
            hint = f"did you mean '{ipaddress.ip_network(value, strict=False)}'?"
        except ValueError:
            hint = "write an address block such as 10.20.0.0/16"
        return Code.INVALID_CIDR, f"{shown(value)} is not a valid CIDR ({exc})", hint
    if "/" not in value:
        return (
            Code.INVALID_CIDR,
            f"'{value}' has no prefix length",
            f"write '{value}/32' for a single address",
        )
    return None


@functools.cache
def _time_zones() -> frozenset[str]:
    import importlib.resources  # (a few milliseconds of every start-up, for specs that name a time zone)

    return frozenset(
        importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    )


def check_time_zone(value: str):
    """A name the API server's time zone database knows (Go's, the IANA one): not Local, not an offset."""
    if value in _time_zones():
        return None
    close = difflib.get_close_matches(value, sorted(_time_zones()), n=1, cutoff=0.7)
    return (
        Code.INVALID_VALUE,
        f"{shown(value)} is not an IANA time zone",
        f"did you mean '{close[0]}'?"
        if close
        else "write a name such as Europe/Berlin, America/New_York or UTC",
    )


def check_no_latest(value: str):
    if value == "latest":
        return (
            Code.LATEST_TAG,
            "the tag 'latest' is not allowed",
            "pin a version tag or a digest: a release must name what it runs",
        )
    return None


CRON_SCHEDULE = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+( \S+){4})$"


def check_schedule(value: str):
    if re.search(r"\b(CRON_)?TZ=", value):
        return (
            Code.INVALID_VALUE,
            f"{shown(value)} sets its time zone inside the schedule, which Kubernetes refuses",
            "move it to timeZone: (an IANA name) and keep five fields in schedule",
        )
    if not re.fullmatch(CRON_SCHEDULE, value):
        return (
            Code.INVALID_VALUE,
            f"{shown(value)} is not a cron schedule",
            "five fields, minute hour day-of-month month day-of-week, e.g. '30 3 * * *' (or @daily, @hourly)",
        )
    return None

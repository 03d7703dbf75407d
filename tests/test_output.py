"""What people read: the build summary, the progress bar, colour only on terminals and never with NO_COLOR,
--quiet and --format json for scripts, --version."""

from __future__ import annotations

import io
import json
from pathlib import Path

from kompile import __version__
from kompile.cli.report import ProgressBar, format_diagnostic, use_colour
from kompile.errors import Code, Diagnostic, Span

from conftest import run_kompile


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_build_prints_a_summary_table(example: Path):
    result = run_kompile("build", "--root", str(example))
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["environment", "objects", "added", "changed", "unchanged", "removed"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert rows["prod"] == ["19", "13", "0", "0", "0"]  # 19 objects; 13 files (patches for the rest)
    assert rows["total"][0] == "52"  # the environments' objects (the base's are in each)
    again = run_kompile("build", "--root", str(example)).stdout.splitlines()
    assert again[-1] == "built 3 environment(s): 0 added, 0 changed, 0 removed, 53 unchanged"


def test_quiet_and_json(example: Path):
    quiet = run_kompile("build", "--root", str(example), "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == ""
    data = json.loads(run_kompile("build", "--root", str(example), "--format", "json").stdout)
    assert data["unchanged"] == 53 and {row["environment"] for row in data["environments"]} == {
        "(base)",
        "dev",
        "staging",
        "prod",
        "(gitops)",
    }


def test_version():
    result = run_kompile("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"kompile {__version__}"


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    diagnostic = Diagnostic(
        Code.UNKNOWN_KEY, "unknown key 'x'", Span("environments/dev.yaml", 3, 1), "did you mean 'y'?"
    )
    plain = format_diagnostic(diagnostic, Path("."), colour=False)
    assert "\033[" not in plain
    assert "\033[1;31merror[K201]\033[0m" in format_diagnostic(diagnostic, Path("."), colour=True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_colour(Terminal()) and not use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(Terminal())


def test_errors_through_a_pipe_have_no_colour(example: Path):
    (example / "environments/dev.yaml").write_text(
        (example / "environments/dev.yaml").read_text() + "  replcias: 2\n"
    )
    result = run_kompile("validate", "--root", str(example))
    assert result.returncode == 2 and "\033[" not in result.stderr and "error[K201]" in result.stderr


def test_progress_bar_draws_and_clears():
    stream = io.StringIO()
    bar = ProgressBar(stream, "compiling", width=10)
    for done in range(1, 101):
        bar(done, 100)
    text = stream.getvalue()
    assert "\rcompiling [#####.....] 50/100" in text and "[##########] 100/100" in text
    assert text.endswith("\r")  # the line is wiped when done
    assert text.count("\r") <= 13  # redrawn only when it moves

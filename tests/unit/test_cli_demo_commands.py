"""`streamscope kafka` and `streamscope demo` come from the demo package, which the command line
imports only when one of them is asked for or listed: `run` never loads it."""
from __future__ import annotations

from click.testing import CliRunner

from monitor.cli import cli
from tests.helpers import fresh_interpreter_lines


def test_the_command_line_starts_without_the_demo_package():
    out = fresh_interpreter_lines("import sys\nimport monitor.cli\n"
                                  "print(sorted(m for m in sys.modules if m.split('.')[0] == 'demo'))\n")
    assert out == ["[]"]


def test_the_demo_commands_are_listed_and_run_when_asked_for():
    listed = CliRunner().invoke(cli, ["--help"])
    assert listed.exit_code == 0, listed.output
    commands = listed.output.split("Commands:")[1].split()
    for name in ("check-config", "demo", "kafka", "run", "serve"):
        assert name in commands
    for name, says in (("kafka", "single-node Apache Kafka broker"), ("demo", "--no-spark")):
        shown = CliRunner().invoke(cli, [name, "--help"])
        assert shown.exit_code == 0 and says in shown.output, shown.output
    unknown = CliRunner().invoke(cli, ["nope"])
    assert unknown.exit_code == 2 and "No such command 'nope'" in unknown.output

"""The CLI's help says, for each subcommand that runs user code, that it imports and runs FILE."""

from __future__ import annotations

import pytest

from dualguide.cli import main


def _help(capsys, command: str) -> str:
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", ["check", "crosscheck", "export", "port"])
def test_help_says_file_is_imported_and_run(capsys, command):
    text = _help(capsys, command)
    assert "runs" in text and "files you trust" in text, text


def test_port_help_says_what_no_verify_does(capsys):
    text = _help(capsys, "port")
    assert "--no-verify FILE is only parsed, nothing in it runs" in text
    assert "do not import or run it" in text

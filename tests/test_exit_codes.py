"""The exit-code rule of `poseface` (poseface/cli.py), shared by every command."""

import pytest

from poseface.cli import EXIT_DONE, EXIT_SOME_SKIPPED, EXIT_USAGE, exit_code, main


def test_exit_code_rule():
    assert (EXIT_DONE, EXIT_SOME_SKIPPED, EXIT_USAGE) == (0, 1, 2)
    assert exit_code(0) == 0 and exit_code(1) == 1 and exit_code(7) == 1


def test_no_command_and_a_bad_option_are_usage_errors(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err  # the help, on stderr
    with pytest.raises(SystemExit) as exc:
        main(["restore"])  # argparse: INPUT and -o missing
    assert exc.value.code == 2


def test_a_missing_command_module_is_not_skipped(monkeypatch):
    import poseface.cli

    monkeypatch.setattr(poseface.cli, "COMMAND_MODULES", (*poseface.cli.COMMAND_MODULES, "poseface.no_such_cli"))
    with pytest.raises(ModuleNotFoundError, match="poseface.no_such_cli"):
        poseface.cli.build_parser()

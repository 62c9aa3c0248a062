"""The `mrae` entry point: a script without a `__main__` guard, imported again by a spawned worker
(as `mrae study --jobs N` and DataLoader workers spawn), gets one line instead of a second study."""

from __future__ import annotations

import runpy

import pytest

SCRIPT = "from mrae import cli\nRESULT = cli.main(['synth', '--help'])\n"


def test_a_worker_importing_an_unguarded_script_is_refused(tmp_path, capsys):
    script = tmp_path / "launch.py"
    script.write_text(SCRIPT)
    namespace = runpy.run_path(str(script), run_name="__mp_main__")  # what a spawned worker does
    assert namespace["RESULT"] == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and 'put the call under `if __name__ == "__main__":`' in error


def test_the_same_script_run_as_main_runs_the_command(tmp_path, capsys):
    script = tmp_path / "launch.py"
    script.write_text(SCRIPT)
    with pytest.raises(SystemExit) as stop:  # --help prints and exits 0
        runpy.run_path(str(script), run_name="__main__")
    assert stop.value.code == 0 and "mrae synth" in capsys.readouterr().out


def test_a_guarded_call_inside_a_worker_runs(tmp_path, capsys):
    script = tmp_path / "work.py"
    script.write_text("from mrae import cli\ndef work():\n    return cli.main(['synth', '--help'])\n")
    work = runpy.run_path(str(script), run_name="__mp_main__")["work"]
    with pytest.raises(SystemExit) as stop:  # a function of the script, called later: not refused
        work()
    assert stop.value.code == 0


@pytest.mark.parametrize(("raised", "said"), [
    (KeyboardInterrupt(), "mrae synth: interrupted\n"),
    (KeyboardInterrupt("the runs resume"), "mrae synth: interrupted; the runs resume\n"),
])
def test_ctrl_c_ends_a_command_with_one_line_and_code_130(monkeypatch, capsys, raised, said):
    from mrae import cli
    from mrae.commands import synth

    def interrupted(args):
        raise raised

    monkeypatch.setattr(synth, "main", interrupted)
    assert cli.main(["synth", "out"]) == 130
    assert capsys.readouterr().err == said

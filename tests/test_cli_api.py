"""The seam between the command line and the library: the CLI parses and calls ``api``; every flag has its
own help and reads its setting's type from RunConfig; library errors name the parameter, the CLI the flag."""

from __future__ import annotations

import argparse
import inspect

import pytest

import xferdiag
from xferdiag.cli import build_parser, main
from xferdiag.cli_help import FINETUNE_HELP
from xferdiag.commands import audit as audit_command
from xferdiag.config import RunConfig
from xferdiag.errors import ConfigError, InputError, XferdiagError
from xferdiag.testing import write_minimal_run


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    return next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_every_option_of_every_command_has_its_own_help():
    """Not one falls back to its field's name (14 of the 48 config flags did, and 25 other options had none)."""
    bare = [f"{command} {action.option_strings or action.dest}" for command, parser in _subparsers().items()
            for action in parser._actions
            if not isinstance(action, argparse._HelpAction) and (not action.help or action.help == action.dest.replace("_", " "))]
    assert bare == []
    assert set(FINETUNE_HELP) == {f.name for f in RunConfig.__dataclass_fields__.values()}


def test_flags_read_each_setting_s_type_from_run_config():
    args = build_parser().parse_args(["finetune", "--out", "o", "--head-hidden", "256,128", "--mean", "0.5,0.4,0.3",
                                      "--scratch-lr", "auto", "--lr", "1e-2", "--epochs", "3", "--no-augment",
                                      "--lp-epochs", "2", "--shots", "5,all", "--threads", "2"])
    assert (args.head_hidden, args.mean, args.scratch_lr, args.lr, args.epochs) == ([256, 128], [0.5, 0.4, 0.3], "auto", 0.01, 3)
    assert (args.augment, args.lp_epochs, args.shots, args.threads, args.batch_size) == (False, 2, "5,all", 2, None)
    assert build_parser().parse_args(["finetune", "--scratch-lr", "0.05"]).scratch_lr == 0.05  # a number where one fits
    config = RunConfig().replace(**{k: v for k, v in vars(args).items() if k in RunConfig.__dataclass_fields__ and v is not None})
    assert config.shots == [5, "all"] and config.head_hidden == [256, 128]


def test_a_flag_of_the_wrong_type_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["finetune", "--head-hidden", "64,x"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().endswith("argument --head-hidden: invalid comma-separated int value: '64,x' "
                                                    "(see 'xferdiag finetune --help')")


def test_api_and_command_take_audit_s_arguments_in_the_same_order():
    api_order = list(inspect.signature(xferdiag.audit).parameters)[:3]
    assert api_order == list(inspect.signature(audit_command.audit).parameters)[:3] == ["checkpoint", "config", "out"]


def test_library_errors_name_the_parameter_and_the_cli_the_flag(tmp_path, capsys):
    run = write_minimal_run(tmp_path / "run")
    with pytest.raises(InputError, match=r"^methods: unknown method\(s\) nope; choose from gradcam, shap, lime, ig$"):
        xferdiag.explain(run, methods="nope")
    assert main(["explain", str(run), "--methods", "nope"]) == 2
    assert capsys.readouterr().err == "xferdiag: error: --methods: unknown method(s) nope; choose from gradcam, shap, lime, ig\n"
    with pytest.raises(ConfigError, match=r"^shots: rank scores one training-set size at a time, got \[5, 10\]$"):
        xferdiag.rank("digits:rotated", ["builtin:digits-cnn"], tmp_path / "rank", shots="5,10")
    assert main(["rank", "--data", "digits:rotated", "--candidates", "builtin:digits-cnn", "--shots", "5,10",
                 "--out", str(tmp_path / "rank")]) == 2
    assert capsys.readouterr().err == "xferdiag: error: --shots: rank scores one training-set size at a time, got [5, 10]\n"


def test_a_run_resumed_by_its_folder_keeps_its_settings(tmp_path):
    with pytest.raises(ConfigError, match="^resume: a run resumed by its folder keeps the settings it records; give only seeds=N$"):
        xferdiag.finetune(resume=tmp_path, epochs=3)


def test_an_empty_validation_split_names_the_fraction_to_raise(tmp_path, capsys, digits_checkpoint):
    with pytest.raises(XferdiagError, match="^val_fraction: the validation split is empty; raise it or add a val/ folder$"):
        xferdiag.finetune(data="digits:rotated", pretrained_checkpoint=str(digits_checkpoint), val_fraction=0.0,
                          out=tmp_path / "api", quiet=True)
    assert main(["finetune", "--data", "digits:rotated", "--pretrained-checkpoint", str(digits_checkpoint),
                 "--val-fraction", "0", "--out", str(tmp_path / "cli"), "--quiet"]) == 2
    assert capsys.readouterr().err == "xferdiag: error: --val-fraction: the validation split is empty; raise it or add a val/ folder\n"


def test_every_command_prints_its_help():
    """argparse formats help with %: a literal '90%' in a help text broke `xferdiag finetune --help` once."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert "finetune" in commands and len(commands) >= 8
    for name, sub in commands.items():
        text = sub.format_help()
        assert text.startswith("usage: ") and "%%" not in text, name
    assert "90% interval" in commands["finetune"].format_help()

"""The command line as a new user meets it: checked numbers, one-line errors, repeatable runs."""

import argparse

import pytest

from dta import cli
from dta.cli import build_parser, main
from dta.models import create_model
from dta.train import CHECKPOINT_FORMAT, resolve_config, save_checkpoint

# what each command needs besides the option under test
REQUIRED = {"convert": ["--released", "in.pth", "out.pt"], "report": ["records"],
            "compare": ["old", "new"]}
CHECKED = (cli.positive_int, cli.non_negative_int, cli.positive_float, cli.non_negative_float,
           cli.probability)


def _subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def _typed_options():
    for name, parser in _subcommands().items():
        for action in parser._actions:
            if action.option_strings and action.type is not None:
                yield name, action, getattr(action.type, "item", action.type)  # csv: its items


def _numeric_options():
    return [(name, action) for name, action, base in _typed_options() if base in CHECKED]


def test_every_numeric_option_uses_a_checked_type():
    assert len(_numeric_options()) >= 30  # models, train, measure, convert and bench have some
    for command, action, base in _typed_options():
        assert base in CHECKED or base is str, f"dta {command} {action.option_strings[0]}: {base}"


@pytest.mark.parametrize("command,option", [(c, a.option_strings[0]) for c, a in
                                            _numeric_options()])
def test_every_numeric_option_rejects_a_negative_in_one_line(command, option, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, f"{option}=-1", *REQUIRED.get(command, [])])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"dta {command}: error: argument {option}")
    assert "'-1'" in err and f"(see dta {command} --help)" in err


def test_batch_size_zero_is_a_clear_error_not_a_traceback(capsys):
    with pytest.raises(SystemExit):
        main(["measure", "--batch-size", "0"])
    assert capsys.readouterr().err == ("dta measure: error: argument --batch-size: expected an "
                                       "integer >= 1, got '0' (see dta measure --help)\n")


@pytest.mark.parametrize("parse,good,bad", [
    (cli.positive_int, "3", ["0", "2.5", "x"]),
    (cli.non_negative_int, "0", ["-1", "1e3"]),
    (cli.positive_float, "0.1", ["0", "nan", "inf", "-0.1"]),
    (cli.non_negative_float, "0", ["-1e-9", "nan"]),
    (cli.probability, "1", ["1.01", "-0.1", "nan"]),
])
def test_checked_types(parse, good, bad):
    assert parse(good) == float(good)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=rf"expected .*, got '{text}'"):
            parse(text)


def test_comma_lists_check_every_item(capsys):
    parse = cli._csv(cli.positive_int)
    assert parse("2, 4,8") == (2, 4, 8)
    for text in ("0,4", "4,x", ","):
        with pytest.raises(argparse.ArgumentTypeError, match="each an integer >= 1"):
            parse(text)


SMALL = ["--width", "8", "--T", "2", "--batch-size", "2"]


def test_measure_same_command_same_numbers(capsys):
    """The untrained model is built after seeding: the same command gives the same counts."""
    runs = []
    for seed in ("0", "0", "1"):
        assert main(["measure", *SMALL, "--seed", seed]) == 0
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]  # the seed is what sets the untrained weights
    assert "seed 0" in runs[0] and "seed 1" in runs[2]


@pytest.fixture
def checkpoint(tmp_path):
    """A dta-bench checkpoint of an untrained digits model (width 4, T=2, attention none)."""
    cfg = resolve_config("digits", "none", width=4, T=2, out=str(tmp_path))
    net = create_model(cfg.model, attention="none", T=2, num_classes=10, in_channels=1, width=4)
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "model": net.state_dict(),
                           "config": cfg.to_dict()})
    return path


def test_measure_missing_checkpoint_is_not_found_with_measures_own_advice(tmp_path, capsys):
    assert main(["measure", "--checkpoint", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert f"dta measure: error: checkpoint {tmp_path / 'nope.pt'} not found" in err
    assert "pass --checkpoint" in err and "--out" not in err and "corrupt" not in err
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert main(["measure", "--checkpoint", str(tmp_path / "bad.pt")]) == 2
    err = capsys.readouterr().err
    assert "is corrupt or not a dta-bench checkpoint" in err and "pass --checkpoint" in err
    assert "--out" not in err


def test_measure_options_that_disagree_with_the_checkpoint_are_errors(checkpoint, tmp_path,
                                                                      capsys):
    root = ["--data-root", str(tmp_path / "data"), "--batch-size", "2"]
    assert main(["measure", "--checkpoint", str(checkpoint), "--T", "9", "--width", "4",
                 "--attention", "dta", *root]) == 2
    err = capsys.readouterr().err
    assert "options disagree with checkpoint" in err
    assert "--T 9 (the checkpoint's: 2)" in err
    assert "--attention dta (the checkpoint's: none)" in err
    assert "--width" not in err  # given, but equal to the checkpoint's
    assert main(["measure", "--checkpoint", str(checkpoint), "--dataset", "dvs-digits",
                 *root]) == 2
    assert "--dataset dvs-digits (input channels 2, the checkpoint's 1)" in capsys.readouterr().err
    # options equal to the checkpoint's are fine
    assert main(["measure", "--checkpoint", str(checkpoint), "--T", "2", "--in-channels", "1",
                 *root]) == 0
    assert f"checkpoint {checkpoint} (digits/none, T=2)" in capsys.readouterr().out


def test_measure_options_that_disagree_with_the_dataset_are_errors(tmp_path, capsys):
    assert main(["measure", "--dataset", "digits", "--in-channels", "3", "--width", "4",
                 "--T", "2", "--data-root", str(tmp_path)]) == 2
    assert ("options disagree with --dataset digits: --in-channels 3 (dataset digits: 1)"
            in capsys.readouterr().err)


def test_models_and_bench_reject_bad_numbers(capsys):
    for argv in (["models", "--T", "0"], ["bench", "--seeds", "0,-2"],
                 ["train", "--cutmix-prob", "1.5"], ["train", "--lr", "0"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert capsys.readouterr().err.count("\n") == 1


def test_energy_model_help_names_every_registered_model_and_its_kind():
    from dta.cli import ENERGY_MODEL_HELP
    from dta.measure import get_energy_model, list_energy_models

    compute_only, memory = ENERGY_MODEL_HELP.split("compute + memory:")
    for name in list_energy_models():
        part = compute_only if get_energy_model(name).compute_only else memory
        assert name in part, f"--energy-model help does not list {name} where it belongs"

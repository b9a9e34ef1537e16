"""``dta history`` on asv results written by a real (quick) asv run of a tiny project.

A two-commit git repository with its own asv.conf.json (existing environment) and a small
suite: a parametrised ``track_`` and ``time_`` benchmark over two methods and two T, a plain
``track_`` and one whose setup skips. asv runs it once per commit, the second time with the
tracked values doubled (an environment variable the benchmark reads), then ``dta history``
draws it and the test reads back the tables and figures.
"""

import csv
import json
import os
import shutil
import subprocess
import sys

import matplotlib.image
import pytest

from dta import history

BENCH = '''
import os

SCALE = float(os.environ["TOY_SCALE"])


class Toy:
    params = (["a", "b"], [2, 4])
    param_names = ["method", "T"]

    def track_energy(self, method, T):
        return SCALE * {"a": 0.5, "b": 1.25}[method] * T

    track_energy.unit = "uJ per inference"

    def time_sum(self, method, T):
        sum(range(100 * T))


def track_count():
    return 7 * SCALE


class Skipped:
    def setup(self):
        raise NotImplementedError("no accelerator here")

    def time_nothing(self):
        pass
'''

CONFIG = '''{
    "version": 1, "project": "toy", "repo": ".", "branches": ["main"],
    "environment_type": "existing", "benchmark_dir": "benchmarks",
    "results_dir": "asv-results", "html_dir": "asv-html",
    "show_commit_url": "https://example.org/toy/commit/"
}
'''


def energy(scale, method, T):
    return scale * {"a": 0.5, "b": 1.25}[method] * T


def _run(cmd, cwd, env):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """(project folder, [first commit, second commit]) with asv results of both commits."""
    root = tmp_path_factory.mktemp("asvproj")
    home = tmp_path_factory.mktemp("home")  # asv keeps its machine file in ~/.asv-machine.json
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASV", "GIT_"))}
    env.update(HOME=str(home), GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    (root / "benchmarks").mkdir()
    (root / "benchmarks" / "__init__.py").write_text("")
    (root / "benchmarks" / "bench.py").write_text(BENCH)
    (root / "asv.conf.json").write_text(CONFIG)
    (root / ".gitignore").write_text("asv-results/\nasv-html/\n")
    git = ["git", "-c", "init.defaultBranch=main"]
    _run(git + ["init", "-q"], root, env)
    _run(git + ["add", "."], root, env)
    _run(git + ["commit", "-q", "-m", "first"], root, env)
    (root / "README").write_text("second\n")
    _run(git + ["add", "README"], root, env)
    _run(git + ["commit", "-q", "-m", "second"], root, env)
    commits = _run(["git", "rev-list", "--reverse", "HEAD"], root, env).split()
    asv = [sys.executable, "-m", "asv"]
    _run(asv + ["machine", "--yes", "--machine", "testmachine"], root, env)
    for scale, commit in zip(("1", "2"), commits):
        _run(asv + ["run", "--python=same", "--quick", "--set-commit-hash", commit],
             root, {**env, "TOY_SCALE": scale})
    return root, commits


def _section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _table(lines: list[str]) -> list[list[str]]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines
            if line.startswith("|")]
    return [rows[0]] + rows[2:]  # header, then the body (the rule left out)


def _panel(section: str, panel: str) -> list[list[str]]:
    lines = section.splitlines()
    start = lines.index(f"{panel}:")
    body = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        body.append(line)
    return _table(body)


def test_history_draws_the_metrics_of_a_real_asv_run(project, tmp_path, monkeypatch, capsys):
    root, (first, second) = project
    monkeypatch.chdir(root)  # the defaults: ./asv.conf.json and its results_dir
    out = tmp_path / "history"
    assert history.main(["--out", str(out)]) == 0
    folder = out / "testmachine"
    names = ["bench.Toy.track_energy", "bench.Toy.time_sum", "bench.track_count"]
    for name in names:
        image = matplotlib.image.imread(folder / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    assert not (folder / "bench.Skipped.time_nothing.png").exists()
    assert "(testmachine" not in capsys.readouterr().err  # no order note: git order was used

    text = (folder / "index.md").read_text()
    commits = _table(_section(text, "Commits").splitlines())
    assert [r[0] for r in commits[1:]] == [f"[{c[:8]}](https://example.org/toy/commit/{c})"
                                           for c in (first, second)]
    assert [r[2] for r in commits[1:]] == ["first", "second"]

    energy_md = _section(text, "bench.Toy.track_energy")
    assert "![bench.Toy.track_energy](bench.Toy.track_energy.png)" in energy_md
    for T in (2, 4):
        rows = _panel(energy_md, f"T={T}")
        assert rows[0] == ["commit", "a", "b"]
        assert rows[1:] == [[commit[:8]] + [f"{energy(scale, m, T):.5g}" for m in "ab"]
                            for scale, commit in ((1, first), (2, second))]
    count = _table(_section(text, "bench.track_count").splitlines())
    assert count == [["commit", "track_count"], [first[:8], "7"], [second[:8], "14"]]
    times = _panel(_section(text, "bench.Toy.time_sum"), "T=4")
    assert all(cell.endswith("s") and cell[0].isdigit() for row in times[1:] for cell in row[1:])
    assert "no value on any commit (n/a: skipped, or failed): `bench.Skipped.time_nothing`" in text

    # the CSV holds asv's values exactly
    with open(folder / "history.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["benchmark"] == "bench.Toy.track_energy"]
    got = {(r["commit"], r["params"]): float(r["value"]) for r in rows}
    assert got == {(c, f"method={m}, T={T}"): energy(s, m, T)
                   for s, c in ((1, first), (2, second)) for m in "ab" for T in (2, 4)}

    html = (folder / "index.html").read_text()
    assert "<script" not in html and "http" not in html.replace(
        "https://example.org/toy/commit/", "")
    assert 'href="testmachine/index.html"' in (out / "index.html").read_text()


def test_history_last_and_metric_select(project, tmp_path):
    root, (first, second) = project
    out = tmp_path / "h"
    assert history.main(["--out", str(out), "--config", str(root / "asv.conf.json"),
                         "--metric", "track_energy", "--last", "1"]) == 0
    folder = out / "testmachine"
    assert sorted(p.name for p in folder.glob("*.png")) == ["bench.Toy.track_energy.png"]
    rows = _panel(_section((folder / "index.md").read_text(), "bench.Toy.track_energy"), "T=2")
    assert rows[1:] == [[second[:8], "2", "5"]]  # only the newest commit


def test_history_keeps_environments_apart(project, tmp_path):
    """asv run --python=same and asv continuous (virtualenv) write the same machine's results
    under two environments: each gets its own folder, values never mixed."""
    root, (first, second) = project
    results = tmp_path / "results"
    shutil.copytree(root / "asv-results", results)
    source = next((results / "testmachine").glob(f"{first[:8]}-*.json"))
    data = json.loads(source.read_text())
    data["env_name"] = "virtualenv-py3.11"
    data["results"]["bench.Toy.track_energy"][0] = [9.0, 9.0, 9.0, 9.0]
    (results / "testmachine" / f"{first[:8]}-virtualenv-py3.11.json").write_text(json.dumps(data))
    out = tmp_path / "h"
    assert history.main(["--out", str(out), "--config", str(root / "asv.conf.json"),
                         "--results", str(results), "--metric", "Toy.track_energy"]) == 0
    venv = _panel(_section((out / "testmachine" / "virtualenv-py3.11" / "index.md").read_text(),
                           "bench.Toy.track_energy"), "T=2")
    assert venv[1:] == [[first[:8], "9", "9"]]
    existing = [p for p in (out / "testmachine").iterdir() if p.name.startswith("existing-")]
    assert len(existing) == 1
    rows = _panel(_section((existing[0] / "index.md").read_text(), "bench.Toy.track_energy"),
                  "T=2")
    assert rows[1:] == [[first[:8], "1", "2.5"], [second[:8], "2", "5"]]


def test_history_a_method_added_later_is_blank_not_failed(project, tmp_path):
    """A run from before method ``b`` existed has no ``b`` cells; a benchmark that raised
    (asv stores None) reads ``failed``."""
    root, (first, second) = project
    results = tmp_path / "results"
    shutil.copytree(root / "asv-results", results)
    path = next((results / "testmachine").glob(f"{first[:8]}-*.json"))
    data = json.loads(path.read_text())
    entry = data["results"]["bench.Toy.track_energy"]
    entry[0], entry[1] = [None, 1.0], [["'a'"], ["2", "4"]]  # a, T=2 failed; a, T=4 = 1.0
    path.write_text(json.dumps(data))
    out = tmp_path / "h"
    assert history.main(["--out", str(out), "--config", str(root / "asv.conf.json"),
                         "--results", str(results), "--metric", "Toy.track_energy"]) == 0
    text = _section((out / "testmachine" / "index.md").read_text(), "bench.Toy.track_energy")
    assert _panel(text, "T=2")[1:] == [[first[:8], "failed", ""], [second[:8], "2", "5"]]
    assert _panel(text, "T=4")[1:] == [[first[:8], "1", ""], [second[:8], "4", "10"]]


@pytest.mark.parametrize("argv, message", [
    (["--metric", "track_nope"], "unknown metric 'track_nope'; known: bench.Skipped.time_nothing, "
                                 "bench.Toy.time_sum, bench.Toy.track_energy, bench.track_count"),
    (["--machine", "other"], "no results for machine 'other'"),
    (["--results", "missing"], "no asv results folder missing"),
    (["--config", "nope.json"], "asv config nope.json not found"),
])
def test_history_bad_input_is_one_line(project, tmp_path, monkeypatch, capsys, argv, message):
    root, _ = project
    monkeypatch.chdir(root)
    assert history.main(["--out", str(tmp_path / "h"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dta history: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "h").exists()


def test_history_without_results(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no asv.conf.json, no .asv/results
    assert history.main(["--out", "h"]) == 2
    assert "no asv results folder .asv/results" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert history.main(["--out", "h", "--results", "empty"]) == 2
    assert "asv run writes it" in capsys.readouterr().err


def test_history_subcommand_plugs_into_dta(capsys):
    from dta.cli import _Parser

    parser = _Parser(prog="dta")
    history.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["history", "--out", "x", "--metric", "a,b", "--metric", "c"])
    assert args.func is history.run and args.last == history.DEFAULT_LAST
    assert args.metric == [("a", "b"), ("c",)]
    with pytest.raises(SystemExit):
        parser.parse_args(["history", "--out", "x", "--last", "0"])
    assert "--last: expected an integer >= 1" in capsys.readouterr().err

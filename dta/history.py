"""``dta history``: asv's results over commits, drawn without a browser script or the internet.

The stock ``asv publish`` dashboard loads jQuery, flot and bootstrap from CDNs, so it is a
blank page offline. This reads the same results through asv's own Python API
(:mod:`asv.config`, :mod:`asv.results`, :mod:`asv.benchmarks`, asv's git repository class
for the commit order) and writes, per machine (and environment, where a machine ran in several), into
``OUT/<machine>/``:

- ``<benchmark>.png``: one figure per benchmark (``track_*``, ``time_*``, ``peakmem_*``...),
  a line per method over commits (x: commits in git order, short hashes), one panel per value
  of any further parameter (e.g. ``T``); time benchmarks carry their interquartile band;
- ``index.md`` / ``index.html``: the figures and a table of the last N commits per benchmark
  (rows: commits, oldest first; columns: methods), values with units (``n/a``: skipped,
  ``failed``: the benchmark raised, blank: not run on that commit); no scripts;
- ``history.csv``: every value, tidy (one row per commit, benchmark and parameter set);

and ``OUT/index.md`` / ``OUT/index.html`` listing the machines. Every file is written
atomically. Run it as ``dta history --out DIR`` or ``python -m dta.history --out DIR``.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import html
import io
import itertools
import math
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .io import atomic_write, atomic_write_text

DEFAULT_CONFIG = "asv.conf.json"
DEFAULT_RESULTS = ".asv/results"
DEFAULT_LAST = 10


# -- reading asv's results --------------------------------------------------------------------------


@dataclass
class Commit:
    hash: str
    date: datetime.datetime  # the commit's date as asv recorded it (UTC)
    subject: str = ""  # first line of the message, when the repository has the commit


@dataclass
class Benchmark:
    """One asv benchmark as ``benchmarks.json`` describes it (params as display strings)."""

    name: str
    type: str  # "track", "time", "peakmem", "mem"
    unit: str
    param_names: list[str]
    params: list[list[str]]  # asv's repr strings, e.g. ["'dta'", "'ta'"], ["2", "4"]
    version: str | None = None

    @property
    def combos(self) -> list[tuple[str, ...]]:
        return list(itertools.product(*self.params))


@dataclass
class History:
    """The results of one machine and environment: ``values[benchmark][commit][combo]`` is
    ``(value, q25, q75)``; value None: the benchmark failed, NaN: it was skipped."""

    machine: str
    env: str
    commits: list[Commit]  # oldest first
    benchmarks: dict[str, Benchmark]
    values: dict[str, dict[str, dict[tuple, tuple]]] = field(default_factory=dict)
    order_note: str = ""
    hash_length: int = 8
    commit_url: str = ""  # asv's show_commit_url ("" when it is the default "#")

    def short(self, commit: str) -> str:
        return commit[: self.hash_length]

    def drawn(self) -> list[str]:
        """Benchmarks with a finite value on some commit (the others were skipped or failed)."""
        return [name for name in self.benchmarks
                if any(_finite(v[0]) for per in self.values.get(name, {}).values()
                       for v in per.values())]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _asv():
    # asv finds its repository classes through its plugins: import git's explicitly
    import asv.benchmarks
    import asv.config
    import asv.plugins.git
    import asv.repo
    import asv.results
    import asv.util

    return asv


def _config(config: str | None, results: str | None):
    """asv's Config and the results folder. Paths in the config are relative to its folder,
    as asv reads them; without a config file (only the default name missing), asv's
    defaults and no repository: commits are then ordered by date."""
    asv = _asv()
    path = Path(config or DEFAULT_CONFIG)
    if path.is_file():
        try:
            conf = asv.config.Config.load(str(path))
        except asv.util.UserError as err:
            raise ValueError(f"asv config {path}: {err}") from None
        base = path.resolve().parent
        if conf.repo and not re.match(r"^[a-z+]+://|^git@", conf.repo):
            conf.repo = str(base / conf.repo)
        default_results = base / conf.results_dir
    elif config:
        raise FileNotFoundError(f"asv config {config} not found: name asv's config file with "
                                "--config, or leave --config out to use the defaults")
    else:
        conf = asv.config.Config()
        conf.repo = None
        default_results = Path(DEFAULT_RESULTS)
    results_dir = Path(results) if results else default_results
    if not results_dir.is_dir():
        raise FileNotFoundError(
            f"no asv results folder {results_dir}: run asv first (make asv-quick), or name the "
            "folder with --results")
    conf.results_dir = str(results_dir)
    return conf, results_dir


def _benchmarks(conf) -> dict[str, Benchmark]:
    asv = _asv()
    try:
        found = asv.benchmarks.Benchmarks.load(conf)
    except asv.util.UserError as err:
        raise ValueError(f"cannot read asv's benchmark list in {conf.results_dir} ({err}); "
                         "asv run writes it") from None
    return {name: Benchmark(name=name, type=b.get("type", ""), unit=b.get("unit", ""),
                            param_names=list(b.get("param_names") or []),
                            params=[list(p) for p in b.get("params") or []],
                            version=b.get("version"))
            for name, b in sorted(found.items())}


def _machines(results_dir: Path) -> list[str]:
    asv = _asv()
    return sorted({machine for _, _, machine in asv.results.iter_results_paths(str(results_dir))})


def select_metrics(benchmarks: dict[str, Benchmark], metrics) -> dict[str, Benchmark]:
    """The benchmarks named by ``metrics`` (full names or their tails, e.g. ``track_error_rate``
    selects every class's, ``Forward.time_forward`` one); all when ``metrics`` is empty."""
    if not metrics:
        return dict(benchmarks)
    chosen = {}
    for metric in metrics:
        hits = [n for n in benchmarks if n == metric or n.endswith("." + metric)]
        if not hits:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(benchmarks)}")
        chosen.update((n, benchmarks[n]) for n in hits)
    return {n: benchmarks[n] for n in benchmarks if n in chosen}


def _order(conf, commits: dict[str, int]) -> tuple[list[str], dict[str, str], str]:
    """Commit hashes in git order (asv's own order: ``rev-list --all --date-order``, as its
    dashboard uses), their subjects, and a note when that order was not available and the
    dates asv recorded were used instead."""
    asv = _asv()
    by_date = sorted(commits, key=lambda h: (commits[h], h))
    if not conf.repo or not asv.plugins.git.Git.is_local_repo(conf.repo):
        # a remote URL would make asv clone a mirror: never from a read-only report
        return by_date, {}, "no local git repository in the asv config: commits ordered by date"
    try:
        repo = asv.repo.get_repo(conf)
        revisions = repo.get_revisions(set(commits))
    except (asv.util.UserError, asv.util.ProcessError, OSError) as err:
        return by_date, {}, f"git failed ({err}): commits ordered by date"
    subjects = _subjects(conf.repo, commits)
    missing = [h for h in commits if h not in revisions]
    if missing:
        return by_date, subjects, (f"{len(missing)} commit(s) not in {conf.repo}: commits "
                                   "ordered by date")
    return sorted(commits, key=revisions.__getitem__), subjects, ""


def _subjects(repo: str, commits) -> dict[str, str]:
    try:
        out = subprocess.run(["git", "-C", repo, "log", "--all", "--format=%H%x09%s"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    pairs = (line.split("\t", 1) for line in out.splitlines() if "\t" in line)
    return {h: s for h, s in pairs if h in commits}


def load_history(results: str | None = None, config: str | None = None,
                 machine: str | None = None, metrics=None) -> list[History]:
    """asv's results, one :class:`History` per machine and environment (all machines unless
    ``machine`` is given). Results of another version of a benchmark than ``benchmarks.json``
    names are left out, as asv's dashboard does."""
    asv = _asv()
    conf, results_dir = _config(config, results)
    benchmarks = select_metrics(_benchmarks(conf), metrics)
    machines = _machines(results_dir)
    if not machines:
        raise ValueError(f"no asv results in {results_dir} (no <machine>/machine.json with "
                         "result files): run asv run first (make asv-quick)")
    if machine is not None:
        if machine not in machines:
            raise ValueError(f"no results for machine {machine!r} in {results_dir}; machines "
                             f"with results: {', '.join(machines)}")
        machines = [machine]
    histories = []
    for name in machines:
        by_env: dict[str, list] = {}
        for result in asv.results.iter_results_for_machine(str(results_dir), name):
            by_env.setdefault(result.env_name, []).append(result)
        for env, runs in sorted(by_env.items()):
            histories.append(_history(conf, name, env, runs, benchmarks))
    return histories


def _history(conf, machine: str, env: str, runs, benchmarks) -> History:
    dates = {r.commit_hash: r.date or 0 for r in runs}
    order, subjects, note = _order(conf, dates)
    commits = [Commit(h, datetime.datetime.fromtimestamp(dates[h] / 1000, datetime.timezone.utc),
                      subjects.get(h, "")) for h in order]
    url = "" if conf.show_commit_url in ("", "#") else conf.show_commit_url
    hist = History(machine, env, commits, dict(benchmarks), order_note=note,
                   hash_length=conf.hash_length, commit_url=url)
    # get_result_keys compares versions with benchmarks.json's: a result of another version
    # is not this benchmark's history any more
    lookup = {n: {"version": b.version} for n, b in benchmarks.items()}
    for r in runs:
        for key in r.get_result_keys(lookup):
            bench = benchmarks[key]
            values = r.get_result_value(key, bench.params)
            stats = r.get_result_stats(key, bench.params)
            per = hist.values.setdefault(key, {}).setdefault(r.commit_hash, {})
            # asv answers None (its "failed") for a combination this run did not have, e.g. a
            # method added later: leave those out (blank), keep real failures
            ran = set(itertools.product(*r.get_result_params(key)))
            for combo, value, stat in zip(bench.combos, values, stats):
                if bench.combos != [()] and combo not in ran:
                    continue
                q25 = q75 = None
                if isinstance(stat, dict) and _finite(stat.get("q_25")) and _finite(stat.get("q_75")):
                    q25, q75 = stat["q_25"], stat["q_75"]
                per[combo] = (value, q25, q75)
    return hist


# -- labels and formatting -----------------------------------------------------------------------


def _param(text: str) -> str:
    """asv stores parameters as their repr: ``"'dta'"`` -> ``dta``, ``"4"`` -> ``4``."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return str(value)


def _lines_and_panels(bench: Benchmark):
    """(line labels, panel labels, combo -> (line, panel)): the first parameter (the method)
    is a line; the others, where they take several values, a panel each; a parameter with one
    value is named in the title."""
    if not bench.params:
        return [bench.name.rsplit(".", 1)[-1]], [""], {(): (bench.name.rsplit(".", 1)[-1], "")}
    names = bench.param_names or [f"p{i}" for i in range(len(bench.params))]
    where = {}
    for combo in bench.combos:
        line = _param(combo[0])
        panel = ", ".join(f"{n}={_param(v)}" for n, v, vals in
                          zip(names[1:], combo[1:], bench.params[1:]) if len(vals) > 1)
        where[combo] = (line, panel)
    lines = list(dict.fromkeys(line for line, _ in where.values()))
    panels = list(dict.fromkeys(panel for _, panel in where.values()))
    return lines, panels, where


def _fixed(bench: Benchmark) -> str:
    """The parameters that take one value, e.g. ``T=4``."""
    names = bench.param_names or [f"p{i}" for i in range(len(bench.params))]
    return ", ".join(f"{n}={_param(v[0])}" for n, v in zip(names[1:], bench.params[1:])
                     if len(v) == 1)


_SCALES = {
    "seconds": [(1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")],
    "bytes": [(1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "bytes")],
}


def _scale(unit: str, values) -> tuple[float, str]:
    """A divisor and a unit for the axis, picked by the median (seconds and bytes only; other
    units as they are)."""
    finite = sorted(abs(v) for v in values if _finite(v) and v != 0)
    if unit not in _SCALES or not finite:
        return 1.0, unit
    middle = finite[len(finite) // 2]
    for factor, name in _SCALES[unit]:
        if middle >= factor:
            return factor, name
    return _SCALES[unit][-1]


def format_value(value, unit: str, q25=None, q75=None) -> str:
    """A table cell: seconds and bytes as asv prints them (the median ± half the interquartile
    range), other units to 5 significant digits (thousands separated from 100,000)."""
    from asv.util import human_value

    if value is None:
        return "failed"
    if not _finite(value):
        return "n/a"
    if unit in ("seconds", "bytes"):
        err = (q75 - q25) / 2 if q25 is not None and q75 is not None else None
        return human_value(value, unit, err=err if err else None)
    if abs(value) >= 1e5:
        return f"{value:,.0f}"
    return f"{value:.5g}"


# -- writing -----------------------------------------------------------------------------------


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "machine"


def _folders(histories: list[History]) -> list[str]:
    """One folder per machine; a machine with several environments gets one per environment."""
    counts = {}
    for h in histories:
        counts[h.machine] = counts.get(h.machine, 0) + 1
    folders = []
    for h in histories:
        name = _safe(h.machine)
        if counts[h.machine] > 1:
            name = f"{name}/{_safe(h.env)[:80]}"
        folders.append(name)
    return folders


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_benchmark(hist: History, name: str, path: Path) -> Path:
    """One PNG: a line per method over ``hist.commits``, a panel per further parameter value."""
    plt = _pyplot()
    bench = hist.benchmarks[name]
    lines, panels, where = _lines_and_panels(bench)
    data = hist.values.get(name, {})
    factor, unit = _scale(bench.unit, [v[0] for per in data.values() for v in per.values()])
    n = len(hist.commits)
    cols = min(len(panels), 2)
    rows = math.ceil(len(panels) / cols)
    width = min(max(6.0, 3.0 + 0.3 * n), 16.0) * (1 if cols == 1 else 0.75) * cols
    fig, axes = plt.subplots(rows, cols, figsize=(width, 3.6 * rows + 0.6), dpi=110,
                             squeeze=False)
    colors = plt.get_cmap("tab10")
    xs = list(range(n))
    for ax, panel in zip(axes.flat, panels):
        for i, line in enumerate(lines):
            combos = [c for c, (ln, pn) in where.items() if ln == line and pn == panel]
            if not combos:
                continue
            cells = [data.get(c.hash, {}).get(combos[0]) for c in hist.commits]
            ys = [cell[0] / factor if cell and _finite(cell[0]) else math.nan for cell in cells]
            color = colors(i % 10)
            # a marker per method too: methods with equal values overlap exactly
            ax.plot(xs, ys, marker="os^vDPX*<>"[i % 10], ms=4, lw=1.4, color=color, label=line)
            low = [cell[1] / factor if cell and cell[1] is not None else math.nan for cell in cells]
            high = [cell[2] / factor if cell and cell[2] is not None else math.nan for cell in cells]
            if any(_finite(v) for v in low):
                ax.fill_between(xs, low, high, color=color, alpha=0.15, lw=0)
        positive = [y for ln in ax.get_lines() for y in ln.get_ydata() if _finite(y)]
        if positive and min(positive) > 0 and max(positive) > 10 * min(positive):
            ax.set_yscale("log")  # an outlier would flatten every other line
        ax.set_title(panel, fontsize=10)
        ax.set_ylabel(textwrap.fill(unit, 40), fontsize=9)
        step = max(1, math.ceil(n / 30))  # at most ~30 labels
        ax.set_xticks(xs[::step], [hist.short(c.hash) for c in hist.commits][::step],
                      rotation=60, ha="right", fontsize=8, family="monospace")
        ax.set_xlim(-0.5, n - 0.5)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fixed = _fixed(bench)
    fig.suptitle(f"{name}{f' ({fixed})' if fixed else ''}: {bench.unit}\nmachine "
                 f"{hist.machine}, commits oldest to newest", fontsize=10)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
                   frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    # no Software/date metadata: the same results give the same bytes
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def tables(hist: History, name: str, last: int) -> dict:
    """Per panel (e.g. ``"T=2"``; ``""`` without panels), the last ``last`` commits (rows,
    oldest first) by the benchmark's lines (columns: methods), values formatted with units."""
    import pandas as pd

    bench = hist.benchmarks[name]
    lines, panels, where = _lines_and_panels(bench)
    data = hist.values.get(name, {})
    combo_of = {w: c for c, w in where.items()}
    return {panel: pd.DataFrame([_row(hist, bench, commit, data.get(commit.hash),
                                      [(ln, combo_of[ln, panel]) for ln in lines
                                       if (ln, panel) in combo_of])
                                 for commit in hist.commits[-last:]])
            for panel in panels}


def _row(hist: History, bench: Benchmark, commit: Commit, per, columns) -> dict:
    row = {"commit": hist.short(commit.hash)}
    for label, combo in columns:
        if per is not None and combo in per:
            value, q25, q75 = per[combo]
            row[label] = format_value(value, bench.unit, q25, q75)
        else:
            row[label] = ""  # not run on this commit
    return row


def _markdown_table(frame, numeric: bool = True) -> str:
    # plain GFM, unpadded: a cell is exactly the value's text (numbers right-aligned)
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join(["---"] + ["--:" if numeric else "---"] * (len(frame.columns) - 1)) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _html_table(frame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = ("body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;margin:0.5em 0 2em}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right;font-size:90%}"
        "td:first-child,th:first-child{font-family:monospace;text-align:left}"
        "img{max-width:100%}code{background:#f3f3f3}")

LEGEND = ("Values as asv stores them: time and memory benchmarks are the median ± half the "
          "interquartile range; `n/a`: skipped (its setup raised NotImplementedError), "
          "`failed`: the benchmark raised; blank: not run on that commit.")


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body>\n{body}\n</body></html>\n")


def _md_to_html_inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def write_machine(hist: History, folder: Path, last: int) -> list[Path]:
    """Figures, ``index.md``, ``index.html`` and ``history.csv`` of one machine/environment."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    drawn = hist.drawn()
    shown = hist.commits[-last:]
    md = [f"# asv history: machine `{hist.machine}`", "",
          f"Environment `{hist.env}`. {len(hist.commits)} commit(s) with results; the figures "
          f"show all of them, the tables the last {len(shown)}, oldest first. "
          + LEGEND + (f" Note: {hist.order_note}." if hist.order_note else ""), ""]
    htm = [f"<h1>asv history: machine <code>{html.escape(hist.machine)}</code></h1>",
           f"<p>{_md_to_html_inline(md[2])}</p>"]
    commits = pd.DataFrame([{"commit": hist.short(c.hash), "date (UTC)":
                             c.date.strftime("%Y-%m-%d %H:%M"),
                             "subject": textwrap.shorten(c.subject, 80, placeholder=" …")}
                            for c in shown])
    md_commits = commits.copy()
    if hist.commit_url:
        md_commits["commit"] = [f"[{hist.short(c.hash)}]({hist.commit_url}{c.hash})"
                                for c in shown]
    md += ["## Commits", "", _markdown_table(md_commits, numeric=False), ""]
    htm += ["<h2>Commits</h2>", _html_table(commits)]
    for name in drawn:
        bench = hist.benchmarks[name]
        png = folder / f"{_safe(name)}.png"
        written.append(plot_benchmark(hist, name, png))
        fixed = _fixed(bench)
        heading = f"{name} ({bench.unit}{', ' + fixed if fixed else ''})"
        md += [f"## {heading}", "", f"![{name}]({png.name})", ""]
        htm += [f"<h2>{html.escape(heading)}</h2>",
                f"<img src=\"{html.escape(png.name)}\" alt=\"{html.escape(name)}\">"]
        for panel, frame in tables(hist, name, last).items():
            if panel:
                md += [f"{panel}:", ""]
                htm += [f"<h3>{html.escape(panel)}</h3>"]
            md += [_markdown_table(frame), ""]
            htm += [_html_table(frame)]
    for text in _not_drawn(hist, drawn):
        md += [text, ""]
        htm += [f"<p>{_md_to_html_inline(text)}</p>"]
    written.append(atomic_write_text(folder / "index.md", "\n".join(md) + "\n"))
    written.append(atomic_write_text(folder / "index.html",
                                     _page(f"asv history: {hist.machine}", "\n".join(htm))))
    written.append(atomic_write_text(folder / "history.csv", tidy(hist).to_csv(index=False)))
    return written


def _not_drawn(hist: History, drawn: list[str]) -> list[str]:
    """Sentences naming the benchmarks without a figure, and why."""
    never = [n for n in hist.benchmarks if n not in hist.values]
    empty = [n for n in hist.benchmarks if n in hist.values and n not in drawn]
    out = []
    if empty:
        out.append("Not drawn, no value on any commit (n/a: skipped, or failed): "
                   + ", ".join(f"`{n}`" for n in empty) + ".")
    if never:
        out.append("Not drawn, not run on this machine (or only an older version of it): "
                   + ", ".join(f"`{n}`" for n in never) + ".")
    return out


def tidy(hist: History):
    """Every value, one row per (commit, benchmark, parameter set), commits in order."""
    import pandas as pd

    rows = []
    for c in hist.commits:
        for name, bench in hist.benchmarks.items():
            per = hist.values.get(name, {}).get(c.hash)
            if per is None:
                continue
            names = bench.param_names or [f"p{i}" for i in range(len(bench.params))]
            for combo, (value, q25, q75) in per.items():
                rows.append({"commit": c.hash, "date": c.date.isoformat(), "benchmark": name,
                             "params": ", ".join(f"{n}={_param(v)}" for n, v in zip(names, combo)),
                             "value": value, "q25": q25, "q75": q75, "unit": bench.unit})
    return pd.DataFrame(rows, columns=["commit", "date", "benchmark", "params", "value", "q25",
                                       "q75", "unit"])


def write_history(histories: list[History], out, last: int = DEFAULT_LAST) -> list[Path]:
    """Every machine's folder under ``out`` and ``out/index.md`` / ``index.html`` linking them."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file: name a folder")
    written = []
    links = []
    for hist, folder in zip(histories, _folders(histories)):
        written += write_machine(hist, out / folder, last)
        links.append((hist, folder))
    md = ["# asv history, offline", "",
          "Drawn by `dta history` from asv's results: no scripts, no internet needed.", ""]
    md += [f"- [`{h.machine}`]({f}/index.md), environment `{h.env}`: {len(h.commits)} "
           f"commit(s), {len(h.drawn())} benchmark(s) drawn" for h, f in links]
    htm = ["<h1>asv history, offline</h1>",
           "<p>Drawn by <code>dta history</code> from asv's results: no scripts, no internet "
           "needed.</p><ul>"]
    htm += [f"<li><a href=\"{html.escape(f)}/index.html\"><code>{html.escape(h.machine)}</code>"
            f"</a>, environment <code>{html.escape(h.env)}</code>: {len(h.commits)} commit(s), "
            f"{len(h.drawn())} benchmark(s) drawn</li>" for h, f in links]
    htm.append("</ul>")
    written.append(atomic_write_text(out / "index.md", "\n".join(md) + "\n"))
    written.append(atomic_write_text(out / "index.html", _page("asv history", "\n".join(htm))))
    return written


# -- command line ------------------------------------------------------------------------------


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``history`` to ``dta``'s subcommands (``build_parser``'s ``add_subparsers``)."""
    from .cli import _csv, positive_int  # here, not at import: dta.cli may import this module

    p = subparsers.add_parser(
        "history", help="asv's results over commits as PNGs and Markdown/HTML tables (offline)",
        description="Read asv's results through asv's Python API and draw, per benchmark "
        "(track_*, time_*, peakmem_*), one PNG with a line per method over commits in git order, "
        "with a table of the last N commits, into DIR/<machine>/ (index.md, index.html, "
        "history.csv; DIR/<machine>/<environment>/ for a machine with several asv "
        "environments); DIR/index.html lists them. No scripts and no internet needed, "
        "unlike the asv publish dashboard, whose pages load jQuery, flot and bootstrap from CDNs.")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    p.add_argument("--results", default=None, metavar="DIR",
                   help="asv results folder (default: the config's results_dir, or "
                   f"{DEFAULT_RESULTS} without a config)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help=f"asv config: results folder, repository for the commit order, commit "
                   f"links (default: {DEFAULT_CONFIG} if present)")
    p.add_argument("--machine", default=None, help="only this asv machine (default: every one)")
    p.add_argument("--last", type=positive_int, default=DEFAULT_LAST, metavar="N",
                   help=f"commits in the tables (the figures show all; default: {DEFAULT_LAST})")
    p.add_argument("--metric", type=_csv(str), action="append", default=None,
                   help="benchmarks to draw, comma-separated or repeated: full asv names or their "
                   "tails, e.g. track_error_rate (every class's) or Forward.time_forward "
                   "(default: all)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """``dta history``: 0 when written; bad input raises (``dta``'s main prints one line)."""
    metrics = [m for group in args.metric or () for m in group]
    histories = load_history(args.results, args.config, args.machine, metrics)
    write_history(histories, args.out, args.last)
    out = Path(args.out)
    for hist, folder in zip(histories, _folders(histories)):
        drawn = hist.drawn()
        print(f"{hist.machine} ({hist.env}): {len(hist.commits)} commit(s), {len(drawn)} of "
              f"{len(hist.benchmarks)} benchmark(s) drawn: {out / folder / 'index.html'}")
        if hist.order_note:
            print(f"dta history: note: {hist.machine}: {hist.order_note}", file=sys.stderr)
    print(f"written: {out / 'index.html'} (and index.md)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m dta.history``: the same command before (or without) ``dta`` wiring it in."""
    from .cli import _Parser

    parser = _Parser(prog="dta")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["history", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"dta history: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

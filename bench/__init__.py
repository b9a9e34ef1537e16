"""The asv suite (``benchmarks.py``) and an asv plugin for ``asv publish``.

The dashboard links every commit as ``show_commit_url + <short hash>``. This project
has no public repository to link to, so ``asv.conf.json`` sets ``show_commit_url`` to
``commits.html#`` and loads this package as a plugin (``"plugins": [".bench"]``, imported
from the directory asv runs in): ``asv publish`` then writes ``commits.html``, one section
per published commit (hash, author, date, message, files changed) with the short hash as
its anchor. Plain HTML, no scripts: it opens offline, from disk or ``asv preview``.
"""

import html
import os
import subprocess

PAGE = "commits.html"


def commit_page(repo_dir: str, hashes, hash_length: int) -> str:
    """The HTML of the commits page: one section per commit in ``hashes`` (full hashes, in
    the order given), read from the git repository ``repo_dir``, anchored by its short hash
    (the dashboard's links) and its full hash (those of asv's regressions.xml feed)."""
    shown = []
    for full in hashes:
        out = subprocess.run(["git", "-C", repo_dir, "show", "--stat", "--format=fuller",
                              "--no-color", full], capture_output=True, text=True)
        text = (out.stdout.rstrip() if out.returncode == 0
                else f"commit {full}\n(not in {repo_dir}: {out.stderr.strip()})")
        shown.append((full, text))
    sections = "\n".join(
        f'<section id="{full[:hash_length]}"><a id="{full}"></a>'
        f"<h2><code>{full[:hash_length]}</code></h2><pre>{html.escape(text)}</pre></section>"
        for full, text in shown)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Commits</title>"
            "<style>body{font-family:sans-serif;margin:2em}section{border-top:1px solid #ccc}"
            "section:target{background:#ffd}pre{white-space:pre-wrap}</style></head><body>\n"
            f"<h1>Commits with benchmark results ({len(shown)})</h1>\n"
            '<p><a href="index.html">back to the dashboard</a></p>\n'
            f"{sections}\n</body></html>\n")


def write_commit_page(html_dir: str, repo_dir: str, hashes, hash_length: int) -> str:
    """Write :func:`commit_page` to ``html_dir/commits.html`` (atomically); returns its path."""
    from dta.io import atomic_write_text

    path = os.path.join(html_dir, PAGE)
    atomic_write_text(path, commit_page(repo_dir, hashes, hash_length))
    return path


try:
    from asv.publishing import OutputPublisher
except ImportError:  # asv's benchmark environments have asv_runner only: nothing to publish
    OutputPublisher = None

if OutputPublisher is not None:

    class CommitPages(OutputPublisher):
        """``asv publish`` step: the page ``show_commit_url`` points at."""

        order = 100  # after asv's own pages

        @classmethod
        def publish(cls, conf, repo, benchmarks, graphs, revisions):
            # ``revisions``: {full hash: position in the history}; newest first
            newest_first = sorted(revisions, key=revisions.get, reverse=True)
            write_commit_page(conf.html_dir, conf.repo, newest_first, conf.hash_length)

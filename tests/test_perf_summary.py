"""make perf prints the ratios its checks measured (a closing summary: pytest captures the
output of passing tests)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_perf_summary_prints_reported_lines(tmp_path):
    check = tmp_path / "test_one.py"
    check.write_text("from tests.perf.timing import report\n\n"
                     "def test_ratio():\n    report('probe / epoch: 2.8%')\n")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
         "-c", str(ROOT / "pyproject.toml"), "--confcutdir", str(ROOT / "tests" / "perf"),
         "-p", "tests.perf.conftest", str(check)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    summary = out.stdout.split("dta-bench performance ratios")
    assert len(summary) == 2 and "probe / epoch: 2.8%" in summary[1]

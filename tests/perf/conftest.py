"""The performance checks' closing summary: the ratios each check measured, printed after
the run (pytest captures a passing test's own output, so ``make perf`` shows them here)."""

from .timing import SUMMARY, machine


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.write_sep("=", "dta-bench performance ratios (same-run, interleaved)")
        terminalreporter.write_line(f"machine: {machine()}")
        for line in SUMMARY:
            terminalreporter.write_line(line)

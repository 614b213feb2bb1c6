"""Coverage-guided fuzzing of one grammar with atheris (libFuzzer), seeded from tests/corpus/.

Not a pytest module (no ``test_`` prefix) and not a project dependency: atheris is installed
apart, e.g. ``pip install --target /tmp/atheris-lib atheris``.  The property is the one
tests/test_fuzz_grammars.py checks on the kept corpus: an input parses (and compiles, and
runs in DuckDB for Insights and filter patterns) or raises a positioned QueryError; anything
else is a crash, written by libFuzzer as ``crash-<sha1>`` — copy it into
``tests/corpus/<grammar>/`` to keep it.

    PYTHONPATH=/tmp/atheris-lib .venv/bin/python tests/fuzz_atheris.py insights \\
        -max_total_time=60 -timeout=5 -max_len=2000 /tmp/fuzz-insights tests/corpus/insights
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["query", "alarms", "test_fuzz_grammars"]):
    import test_fuzz_grammars as T  # noqa: E402

from query.errors import QueryError  # noqa: E402


# Bugs already reported (test_fuzz_grammars.KNOWN): (grammar, exception type, message part).
# Tolerated so that a run keeps looking for new ones instead of stopping at its seed.
KNOWN = [("filter_pattern", "BinderException", "JSON path error"),
         ("insights", "RecursionError", ""),
         ("insights", "ConversionException", "out of range")]


def main() -> None:
    grammar = sys.argv.pop(1)
    run = T.RUNNERS[grammar]
    known = [(t, m) for g, t, m in KNOWN if g == grammar]

    def one(data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        try:
            run(text)
        except QueryError as e:
            if e.span is None:
                raise AssertionError(f"unpositioned {type(e).__name__}: {e.message}") from e
            e.with_text(text).render()
        except Exception as e:  # noqa: BLE001
            if not any(type(e).__name__ == t and m in str(e) for t, m in known):
                raise

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""Rebuild committed reports from their files: `python -m amodal_depth.report OUT [OUT ...]`."""

from __future__ import annotations

import sys

from amodal_depth.report.page import build_report


def main(argv: list[str] | None = None) -> int:
    for arg in (sys.argv[1:] if argv is None else argv) or ["."]:
        print(build_report(arg))
    return 0


if __name__ == "__main__":
    sys.exit(main())

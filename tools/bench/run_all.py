"""Run every benchmark in tools/bench, one after the other, and fail if any goal is missed.

Run with ``hatch run bench:all``.  Each benchmark runs its peer (prometheus_client,
stdlib logging, ...) in the same process and prints ratios; see docs/performance.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Run each ``bench_*.py`` script; return 1 if any of them failed."""
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n##### {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script), *sys.argv[1:]], check=False).returncode:
            failed.append(script.name)
    if failed:
        print(f"\nmissed goals or failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

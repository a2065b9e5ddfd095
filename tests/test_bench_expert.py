"""The vision expert benchmark's MVTec path (`bench_expert.py --mvtec DIR`) on a generated MVTec AD tree."""

import subprocess
import sys
from pathlib import Path

from tests.helpers.datasets import make_mvtec

ROOT = Path(__file__).resolve().parents[1]


def test_mvtec_protocol_runs_on_an_mvtec_format_tree(tmp_path):
    data = make_mvtec(tmp_path / "mvtec", classes=("capsule", "pill"), train=4, good=3, bad=3, size=128)
    out = tmp_path / "expert.md"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_expert.py"), "--data", str(tmp_path / "none"),
                          "--mvtec", str(data), "--backbones", "auto", "--out", str(out)],
                         capture_output=True, text=True, timeout=240, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text()
    assert "## MVTec AD format data" in text
    rows = [line for line in text.splitlines() if line.startswith(("| capsule | auto", "| pill | auto"))]
    assert len(rows) == 4  # two classes, 1 and 4 references
    cells = [cell.strip() for cell in rows[-1].split("|")[1:-1]]
    assert all(0.0 <= float(value) <= 1.0 for value in cells[4:8])  # AUROC, ACC, pixel AUROC, box hits

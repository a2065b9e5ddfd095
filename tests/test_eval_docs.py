"""The README says what the evaluation and the offline backend really do (figures, sources, methods)."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
EVALUATION = README.split("\n## Evaluation", 1)[1].split("\n## ", 1)[0]


def test_offline_examples_name_the_score_source_the_offline_backend_gives():
    shown = re.findall(r"score [0-9.]+ \((\w+)\)\s+class \S+\s+\[offline/", README)
    assert shown and set(shown) == {"expert"}  # tests/test_session_offline.py: score_source == "expert"


def test_the_papers_figures_are_cited_with_their_table():
    assert "arXiv:2403.11083" in EVALUATION and "Table I" in EVALUATION
    for figure in ("0.842", "0.829", "0.593", "0.760", "0.625", "0.370"):
        assert figure in EVALUATION


def test_the_readme_says_how_each_number_is_computed():
    section = EVALUATION.split("How each number is computed", 1)[1]
    for term in ("**ACC**", "**AUROC / AUPR**", "**Answered only**", "**mean**", "**pooled**", "**`--limit N`**",
                 "knowledge fingerprint", "ranked source", "0.5"):
        assert term in section, term

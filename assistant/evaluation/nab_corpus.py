"""`eval --format nab`: our series expert and other detectors scored the NAB way on the same series.

Our detector runs in both modes (causal: every row judged from the rows before it, after NAB's
probationary period, as NAB's detectors are; offline: the whole series seen at once). Its
detections are written in NAB's results layout (results/<detector>/<group>/<detector>_<file>.csv:
timestamp, value, anomaly_score, label; 0.5 is our decision threshold), so NAB's own scorer can
check them. `--peers DIR` adds the published detections of other detectors, each at its own
threshold per profile from NAB's thresholds.json. Every detector is scored on the same series.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assistant.evaluation import nab_score
from assistant.evaluation.datasets import EvalSet, Item
from tools.errors import InputError

OURS = {"causal": "anomalychat", "offline": "anomalychatOffline"}  # NAB reads the detector name up to the first '_'
OUR_THRESHOLD = 0.5
SKIPPED_PEERS = ("null",)  # the null detector is the normalisation's zero, not a competitor


@dataclass
class NabSeries:
    """One NAB series: its key (group/file), rows and labelled windows as row spans."""

    key: str
    group: str
    frame: pd.DataFrame  # index: timestamps; column "value"
    spans: list[tuple[int, int]]

    @property
    def file(self) -> str:
        return self.key.split("/", 1)[1]


@dataclass
class NabOptions:
    peers: Path | None = None  # a NAB results folder: <detector>/<group>/<detector>_<file>.csv
    thresholds: Path | None = None  # NAB's thresholds.json (default: beside the peers or in the data set's config/)


@dataclass
class NabResult:
    """Per detector and profile: the normalised corpus score, per-group scores and the per-series details."""

    profiles: list[str]
    corpus: dict[str, dict[str, float | None]] = field(default_factory=dict)  # detector -> profile -> score
    groups: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)  # detector -> group -> profile
    series: dict[str, dict[str, dict]] = field(default_factory=dict)  # detector -> key -> standard-profile details
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # our modes: CPU seconds for the corpus

    def to_json(self) -> dict:
        return {"profiles": self.profiles, "corpus": self.corpus, "groups": self.groups, "series": self.series,
                "thresholds": self.thresholds, "notes": self.notes, "seconds": self.seconds}


def load_series(dataset: EvalSet) -> list[NabSeries]:
    """Every item of a NAB-format set as timestamps, values and labelled row spans."""
    from tools.inputs.artifacts import load

    found = []
    for item in sorted(dataset.items, key=lambda i: i.id):
        frame = load(item.path).payload
        if not isinstance(frame.index, pd.DatetimeIndex) or "value" not in frame.columns:
            raise InputError(f"{item.id} is not a NAB series (a timestamp column and a value column are needed)")
        spans = sorted(nab_score.window_rows(frame.index, item.windows))
        found.append(NabSeries(_key(item), item.class_name, frame[["value"]], spans))
    return found


def _key(item: Item) -> str:
    return f"{item.class_name}/{item.path.name}"


def our_scores(series: list[NabSeries], mode: str, settings=None) -> tuple[dict[str, np.ndarray], float]:
    """Our per-row decision scores (>= 0.5 where an alarm starts) for every series, and the CPU seconds taken."""
    import time

    from tools.experts.series import detect
    from tools.experts.series_scores import DEFAULT

    started = time.process_time()
    scores = {}
    for s in series:
        learn = int(nab_score.probation_rows(len(s.frame)))
        scores[s.key] = detect(s.frame, mode=mode, learn_rows=learn, settings=settings or DEFAULT).decision_scores()
    return scores, time.process_time() - started


def write_results(out: Path, detector: str, series: list[NabSeries], scores: dict[str, np.ndarray]) -> Path:
    """Detections in NAB's results layout: <out>/results/<detector>/<group>/<detector>_<file>.csv."""
    root = out / "results" / detector
    for s in series:
        label = np.zeros(len(s.frame), np.int8)
        for first, last in s.spans:
            label[first:last + 1] = 1
        table = pd.DataFrame({"timestamp": s.frame.index.strftime("%Y-%m-%d %H:%M:%S"), "value": s.frame["value"].to_numpy(),
                              "anomaly_score": np.round(scores[s.key], 6), "label": label})
        path = root / s.group / f"{detector}_{s.file}"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
    return root


def peer_detectors(peers: Path) -> list[str]:
    """The detectors in a NAB results folder (sub-folders), the null detector and ours left out."""
    if not peers.is_dir():
        raise InputError(f"--peers {peers} is not a folder; give NAB's results folder (results/<detector>/<group>/...)")
    return sorted(p.name for p in peers.iterdir() if p.is_dir() and p.name not in SKIPPED_PEERS
                  and p.name not in OURS.values())


def peer_scores(peers: Path, detector: str, series: list[NabSeries]) -> dict[str, np.ndarray] | None:
    """A peer's anomaly_score per series, aligned with our rows by timestamp; None when a file is missing."""
    scores = {}
    for s in series:
        path = peers / detector / s.group / f"{detector}_{s.file}"
        if not path.is_file():
            return None
        table = pd.read_csv(path, usecols=["timestamp", "anomaly_score"])
        by_time = pd.Series(table["anomaly_score"].to_numpy(), index=pd.to_datetime(table["timestamp"]))
        by_time = by_time[~by_time.index.duplicated()]
        scores[s.key] = by_time.reindex(s.frame.index).to_numpy(dtype=np.float64)
    return scores


def load_thresholds(options: NabOptions, dataset: EvalSet) -> dict:
    """NAB's thresholds.json: the given file, else config/ beside the peers folder, else the data set's config/."""
    candidates = [options.thresholds] if options.thresholds else [
        options.peers.parent / "config" / "thresholds.json" if options.peers else None,
        dataset.root / "config" / "thresholds.json"]
    for path in (Path(c) for c in candidates if c):
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(f"{path} cannot be read as JSON ({exc}); fix it or pass --thresholds FILE") from None
        if options.thresholds:
            raise InputError(f"--thresholds {path} not found")
    raise InputError("no thresholds.json found for the peers (looked beside --peers and in the data set's config/); "
                     "pass --thresholds FILE")


def score_detector(series: list[NabSeries], scores: dict[str, np.ndarray], thresholds: dict[str, float],
                   profiles: dict[str, nab_score.Profile]) -> tuple[dict, dict, dict]:
    """(corpus score per profile, group -> profile -> score, key -> standard-profile details)."""
    corpus, groups, details = {}, {}, {}
    for name, profile in profiles.items():
        scored = {s.key: nab_score.score_detections(nab_score.detections(scores[s.key], thresholds[name]),
                                                    s.spans, profile) for s in series}
        corpus[name] = _rounded(nab_score.normalised(list(scored.values()), profile))
        for group in sorted({s.group for s in series}):
            members = [scored[s.key] for s in series if s.group == group]
            groups.setdefault(group, {})[name] = _rounded(nab_score.normalised(members, profile))
        if name == "standard" or not details:
            details = {k: {"raw": round(v.raw, 4), "windows": v.windows, "found": v.found, "missed": v.missed,
                           "false_alarms": v.false_alarms, "positions": v.positions} for k, v in scored.items()}
    return corpus, groups, details


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def nab_benchmark(dataset: EvalSet, out: Path, options: NabOptions | None = None) -> NabResult:
    """Score our detector (both modes) and the peers on every series; write our detections in NAB's layout."""
    options = options or NabOptions()
    profiles = nab_score.load_profiles(dataset.root / "config" / "profiles.json")
    series = load_series(dataset)
    result = NabResult(list(profiles))
    contenders: dict[str, tuple[dict, dict]] = {}
    for mode, name in OURS.items():
        scores, seconds = our_scores(series, mode)
        write_results(out, name, series, scores)
        result.seconds[name] = round(seconds, 2)
        contenders[name] = (scores, {p: OUR_THRESHOLD for p in profiles})
    if options.peers:
        contenders.update(_peers(options, dataset, series, profiles, result))
    for name, (scores, thresholds) in contenders.items():
        result.corpus[name], result.groups[name], result.series[name] = score_detector(series, scores, thresholds, profiles)
        result.thresholds[name] = thresholds
    return result


def _peers(options: NabOptions, dataset: EvalSet, series, profiles, result: NabResult) -> dict:
    table = load_thresholds(options, dataset)
    found = {}
    for detector in peer_detectors(Path(options.peers)):
        missing = [p for p in profiles if p not in table.get(detector, {})]
        if missing:
            result.notes.append(f"peer {detector} left out: no threshold for {', '.join(missing)} in thresholds.json")
            continue
        scores = peer_scores(Path(options.peers), detector, series)
        if scores is None:
            result.notes.append(f"peer {detector} left out: it has no results for some of these series")
            continue
        found[detector] = (scores, {p: float(table[detector][p]["threshold"]) for p in profiles})
    return found

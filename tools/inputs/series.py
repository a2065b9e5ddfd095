"""Time series (.csv/.tsv, .parquet, .json) -> a DataFrame of numeric columns.

The index is the timestamp column when there is one (a DatetimeIndex, or a numeric time axis),
else the row number. A label column (label / is_anomaly / anomaly) is kept apart in
`extra["labels"]` and is never a data column. Text in a numeric column becomes a missing value.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tools.errors import InputError
from tools.inputs.base import Limits, Loaded, refuse_over

LABEL_NAMES = ("label", "labels", "is_anomaly", "anomaly")
TIME_NAMES = ("timestamp", "time", "datetime", "date", "ts", "time_s", "seconds")
_TOO_MANY_ROWS = "resample or cut the series to the period of interest and upload again"
_CHUNK = 1 << 20


def read_csv(path: Path, limits: Limits, *, sep: str | None = None) -> Loaded:
    """A delimited text table; the delimiter is sniffed from the first line unless given."""
    _refuse_long_text(path, limits)
    with path.open("rb") as handle:
        first = handle.readline(65536).decode("utf-8", errors="replace")
    sep = sep or max((",", ";", "\t", "|"), key=first.count)
    frame = pd.read_csv(path, sep=sep, encoding="utf-8", encoding_errors="replace", skipinitialspace=True)
    return tidy_series(frame, "csv", limits)


def _refuse_long_text(path: Path, limits: Limits) -> None:
    """Count lines in raw chunks (fast) so that a 10^7-row file is refused before parsing."""
    lines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            lines += chunk.count(b"\n")
            refuse_over("the number of rows", lines - 1, limits.max_rows, _TOO_MANY_ROWS)


def read_parquet(path: Path, limits: Limits) -> Loaded:
    """A Parquet table; its row and column counts are checked from the footer first."""
    import pyarrow.parquet as pq

    table_file = pq.ParquetFile(path)
    refuse_over("the number of rows", table_file.metadata.num_rows, limits.max_rows, _TOO_MANY_ROWS)
    refuse_over("the number of columns", table_file.metadata.num_columns, limits.max_columns, "keep the columns of interest")
    frame = table_file.read().to_pandas()
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    return tidy_series(frame, "parquet", limits)


def read_json(path: Path, limits: Limits) -> Loaded:
    """JSON records, columns ({"value": [...]}), a plain list of numbers, or {timestamp: value}."""
    frame = json_to_frame(json.loads(path.read_bytes()))
    return tidy_series(frame, "json", limits)


def json_to_frame(data) -> pd.DataFrame:
    """The JSON layouts a series comes in, as a DataFrame."""
    if isinstance(data, dict) and isinstance(data.get("data"), list | dict) and len(data) <= 3:
        return json_to_frame(data["data"])
    if isinstance(data, list) and data and all(isinstance(v, int | float | None) for v in data[:1000]):
        return pd.DataFrame({"value": data})
    if isinstance(data, list) and data and all(isinstance(v, dict) for v in data[:1000]):
        return pd.DataFrame.from_records(data)
    if isinstance(data, list) and data and all(isinstance(v, list) for v in data[:1000]):
        return pd.DataFrame(data).rename(columns=str)
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        return pd.DataFrame(data)
    if isinstance(data, dict) and data and all(isinstance(v, int | float | None) for v in data.values()):
        return pd.DataFrame({"timestamp": list(data), "value": list(data.values())})
    raise InputError("the JSON layout is not a series; use a list of records like "
                     '[{"timestamp": ..., "value": ...}] or columns like {"value": [...]}')


def tidy_series(frame: pd.DataFrame, fmt: str, limits: Limits) -> Loaded:
    """Columns sorted out: time index, label kept apart, numeric columns, text turned into NaN."""
    refuse_over("the number of rows", len(frame), limits.max_rows, _TOO_MANY_ROWS)
    refuse_over("the number of columns", frame.shape[1], limits.max_columns, "keep the columns of interest")
    if len(frame) == 0:
        raise InputError("the series has no rows; upload a file with at least one row of values")
    frame = frame.rename(columns=lambda c: str(c).strip())
    frame = frame.loc[:, ~frame.columns.duplicated()]
    meta: dict = {"format": fmt}
    label_column = next((c for c in frame.columns if c.lower() in LABEL_NAMES), None)
    frame = _set_time_index(frame, meta)
    labels = _take_labels(frame, label_column, meta)
    values = _numeric_columns(frame.drop(columns=[label_column] if label_column else []), meta)
    if values.shape[1] == 0:
        raise InputError(f"the series has no numeric column (columns: {list(frame.columns)[:10]}); "
                         "add at least one column of numbers")
    if len(values) == 0:
        raise InputError("the series has no rows; upload a file with at least one row of values")
    meta.update({"rows": len(values), "columns": list(values.columns),
                 "missing_values": {c: int(n) for c, n in values.isna().sum().items() if n}})
    extra = {"labels": labels} if labels is not None else {}
    return Loaded("series", values, meta, extra)


def _take_labels(frame: pd.DataFrame, column: str | None, meta: dict) -> pd.Series | None:
    """The 0/1 label column (aligned with the time index), which is never plotted as data."""
    if column is None:
        return None
    meta["label_column"] = column
    labels = _to_float(frame[column])
    labels = labels if labels is not None else pd.Series(0.0, index=frame.index)
    return (labels.fillna(0) != 0).astype(np.int8).rename(column)


def _set_time_index(frame: pd.DataFrame, meta: dict) -> pd.DataFrame:
    column = _time_column(frame)
    meta["timestamp_column"] = column
    if column is None:
        return frame.reset_index(drop=True)
    times = _as_time(frame[column])
    kept = frame.loc[times.notna().to_numpy()].drop(columns=column)
    meta["dropped_rows"] = int(len(frame) - len(kept))
    kept.index = pd.Index(times[times.notna()].to_numpy(), name=column)
    if not kept.index.is_monotonic_increasing:
        kept = kept.sort_index(kind="stable")
        meta["sorted_by_time"] = True
    if isinstance(kept.index, pd.DatetimeIndex) and len(kept):
        meta["start"], meta["end"] = str(kept.index[0]), str(kept.index[-1])
    return kept


def _time_column(frame: pd.DataFrame) -> str | None:
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            return column
    for column in frame.columns:
        if column.lower() in TIME_NAMES:
            return column
    for column in frame.columns[:2]:  # an unnamed first column of dates (as pandas writes them)
        if not pd.api.types.is_numeric_dtype(frame[column]) and _parses_as_dates(frame[column].head(50)):
            return column
    return None


def _parses_as_dates(sample: pd.Series) -> bool:
    text = sample.dropna().astype(str)
    if text.empty or not text.str.contains(r"\d{1,4}[-/:.]\d{1,2}", regex=True).all():
        return False
    return _to_datetime(text).notna().mean() >= 0.9


def _to_datetime(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)  # fast, and the usual case
    if parsed.isna().mean() > 0.1:
        text = values.dropna().astype(str).head(50)
        day_first = bool(text.str.match(r"\d{1,2}\.\d{1,2}\.\d{2,4}").mean() > 0.5)  # 31.12.2024 is European
        parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True, dayfirst=day_first)
    return parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed


def _as_time(values: pd.Series) -> pd.Series:
    """Dates as datetimes; epoch seconds/milliseconds as datetimes; other numbers as a numeric axis."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return _to_datetime(values)
    sample = _to_float(values.head(200)) if not pd.api.types.is_numeric_dtype(values) else None
    numbers = _to_float(values) if sample is None or sample.notna().mean() >= 0.9 else None
    if numbers is not None and numbers.notna().mean() >= 0.9:
        numbers = numbers.where(np.isfinite(numbers))
        middle = float(numbers.median()) if numbers.notna().any() else 0.0
        for unit, low, high in (("s", 1e8, 1e10), ("ms", 1e11, 1e13)):
            if low <= middle < high:
                return pd.to_datetime(numbers, unit=unit, errors="coerce")
        return numbers
    return _to_datetime(values.astype(str))


def _numeric_columns(frame: pd.DataFrame, meta: dict) -> pd.DataFrame:
    kept, ignored, coerced = {}, [], 0
    for column in frame.columns:
        raw = frame[column]
        numbers = _to_float(raw)
        present = int(raw.notna().sum())
        parsed = int(numbers.notna().sum()) if numbers is not None else 0
        if numbers is None or present == 0 or parsed < 0.5 * present:
            ignored.append(column)
            continue
        coerced += present - parsed
        kept[column] = numbers.where(np.isfinite(numbers))
    meta["ignored_columns"] = ignored
    meta["text_in_numeric_columns"] = coerced
    return pd.DataFrame(kept, index=frame.index)


def _to_float(raw: pd.Series) -> pd.Series | None:
    """A column as float64 with text as NaN; None when the cells are not scalars (nested JSON)."""
    try:
        numbers = pd.to_numeric(raw, errors="coerce")
        return pd.Series(numbers.to_numpy(dtype=np.float64, na_value=np.nan), index=raw.index)
    except (TypeError, ValueError):
        return None

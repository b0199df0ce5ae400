"""Small hand-made bar files for loader tests."""

from __future__ import annotations

import pandas as pd


def session_bars(day: str, n: int = 78, start: str = "09:30", freq: str = "5min", price: float = 100.0,
                 volume: float = 1000.0) -> pd.DataFrame:
    """Naive New York wall-clock bars for one day: rising prices so every bar is distinct."""
    ts = pd.date_range(f"{day} {start}", periods=n, freq=freq)
    p = price + 0.01 * pd.RangeIndex(n).to_numpy()
    return pd.DataFrame({"datetime": ts.strftime("%Y-%m-%d %H:%M:%S"), "open": p, "high": p + 0.05,
                         "low": p - 0.05, "close": p + 0.01, "volume": volume})


def write_csv(df: pd.DataFrame, path) -> str:
    df.to_csv(path, index=False)
    return str(path)

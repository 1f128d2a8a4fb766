"""Progress of a run: a tqdm bar over rows with the running TTFT speedup in its postfix."""

from __future__ import annotations

from collections import defaultdict

from tqdm.auto import tqdm


class RunningSpeedup:
    """Mean baseline TTFT over mean method TTFT, over the rows where both have been measured."""

    def __init__(self, baseline_label: str, label: str | None) -> None:
        self.baseline_label = baseline_label
        self.label = label
        self._ttfts: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def add(self, example_id: str, method_label: str, ttft_s: float) -> None:
        if method_label in (self.baseline_label, self.label):
            self._ttfts[example_id][method_label].append(ttft_s)

    def value(self) -> float | None:
        base = method = 0.0
        for by_label in self._ttfts.values():
            b, m = by_label.get(self.baseline_label), by_label.get(self.label)
            if b and m:
                base += sum(b) / len(b)
                method += sum(m) / len(m)
        return base / method if method > 0 else None


class RunProgress:
    """Rows done/total (ETA from tqdm) and the running TTFT speedup of the method under test."""

    def __init__(
        self, total_rows: int, done_rows: int, speedup: RunningSpeedup, desc: str, enabled: bool
    ) -> None:
        self.speedup = speedup
        self.bar = tqdm(
            total=total_rows,
            initial=done_rows,
            desc=desc,
            unit="row",
            disable=not enabled,
            dynamic_ncols=True,
        )
        self._refresh()

    def _refresh(self) -> None:
        value = self.speedup.value()
        if self.speedup.label is not None:
            self.bar.set_postfix_str(
                f"TTFT x{value:.2f} ({self.speedup.label})" if value else "TTFT x?", refresh=False
            )

    def note(self, text: str | None) -> None:
        """A temporary postfix (e.g. "warm-up 1/2"); None restores the running speedup."""
        if text is None:
            self._refresh()
        else:
            self.bar.set_postfix_str(text, refresh=False)
        self.bar.refresh()

    def row_done(self) -> None:
        self._refresh()
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()

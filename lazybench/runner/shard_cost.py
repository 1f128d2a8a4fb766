"""Estimated hours per shard and for the whole run (or protocol), for the dry run.

A sharded run is `shard.count` jobs; each pays its own warm-ups (every method, `warmups` times, on
its first pending prompt) on top of its rows, so the whole run costs the rows once plus the
warm-ups once per shard. Where the rows are at hand the dry run assigns them as the runner will
(lazybench.shards.shard_of) and costs each shard's pending units; where they are not (the hub not
downloaded), each shard is costed at the expected share, 1/N of every dataset's rows.
The time model is `lazybench.runner.estimate`'s; nothing is measured here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lazybench.runner.estimate import RATES, ModelShape, unit_cost


@dataclass
class ShardHours:
    """Rows and estimated hours per shard (a list of one for an unsharded run), per rate class."""

    rows: list[float]
    hours: dict[str, list[float]]  # rate class name ("A100-class", ...) -> hours per shard
    unit: str = "GPU-hours"
    expected: bool = False  # rows by the expected share (ids not at hand), not assigned

    @property
    def count(self) -> int:
        return len(self.rows)

    def total(self, name: str) -> float:
        return sum(self.hours[name])

    def __add__(self, other: ShardHours) -> ShardHours:
        """Two phases run with the same shard.count: shard i does both phases' shard i."""
        if other.count != self.count or set(other.hours) != set(self.hours):
            raise ValueError("phases of one protocol must have the same shards and rate classes")
        return ShardHours(
            [a + b for a, b in zip(self.rows, other.rows)],
            {k: [a + b for a, b in zip(v, other.hours[k])] for k, v in self.hours.items()},
            self.unit,
            self.expected or other.expected,
        )

    def _hours(self, index: int | None) -> str:
        values = {k: (sum(v) if index is None else v[index]) for k, v in self.hours.items()}
        return ", ".join(f"{k} {h:.2f}" for k, h in values.items())

    def lines(self, what: str, this: int | None = None, note: str = "") -> list[str]:
        """Per-shard lines and the whole's; `what` names the whole ("run", "protocol"), `note` follows it."""
        about = "about " if self.expected else ""
        whole = f"whole {what}: {about}{sum(self.rows):,.0f} rows, {self._hours(None)} {self.unit}"
        if self.count == 1:
            return [whole + (f" ({note})" if note else "")]
        job = f" (this job: shard {this}-of-{self.count})" if this is not None else ""
        share = (
            " (the expected share of each dataset: the row ids are not at hand here)" if self.expected else ""
        )
        head = f"shards: {self.count} jobs{job}, each with its own warm-ups; rows and {self.unit} per shard{share}:"
        if self.expected:  # every shard alike
            n, hours = self.rows[0], self._hours(0)
            body = [f"  each of the {self.count} shards: about {n:,.0f} rows, {hours} {self.unit}"]
        else:
            body = [
                f"  {i}-of-{self.count}: {n:,.0f} rows, {self._hours(i)} {self.unit}"
                for i, n in enumerate(self.rows)
            ]
        return [head, *body, f"  {whole} ({self.count} shards{f'; {note}' if note else ''})"]


def _seconds(work: Sequence, shape: ModelShape, key: str, overrides: dict | None, bytes_per: int) -> float:
    """Seconds of dryrun.Work items at one rate class (estimate.unit_cost, as the dry run's estimate)."""
    rates = RATES[key].with_overrides(overrides)
    return sum(
        w.count
        * unit_cost(
            w.entry.name, w.entry.method, shape, rates, w.prompt_tokens, w.new_tokens, bytes_per
        ).total
        for w in work
    )


def _unit(classes: list[str]) -> str:
    return "CPU-hours" if classes == ["cpu"] else "GPU-hours"


def assigned_hours(
    per_shard: list[tuple[int, list, list]], shape, classes: list[str], overrides: dict | None, bytes_per: int
) -> ShardHours:
    """From each shard's (rows, pending work, warm-up work), rows assigned as the runner assigns them."""
    hours = {
        RATES[k].name: [_seconds([*w, *u], shape, k, overrides, bytes_per) / 3600 for _, w, u in per_shard]
        for k in classes
    }
    return ShardHours([float(n) for n, _, _ in per_shard], hours, _unit(classes))


def expected_hours(
    rows: int, work: list, warmup: list, count: int, shape, classes: list[str], overrides: dict | None,
    bytes_per: int,
) -> ShardHours:  # fmt: skip
    """Each of `count` shards at 1/count of the rows' work plus its own warm-ups."""
    hours = {
        RATES[k].name: [
            (
                _seconds(work, shape, k, overrides, bytes_per) / count
                + _seconds(warmup, shape, k, overrides, bytes_per)
            )
            / 3600
        ]
        * count
        for k in classes
    }
    return ShardHours([rows / count] * count, hours, _unit(classes), expected=count > 1)

"""Dev/test split of benchmark rows by a seeded hash of the row id.

Operating points are chosen on one part of the rows (dev) and reported on the other (test), so a
table's numbers are not the maximum of many noisy settings on the very rows it reports. The split
is a property of the row id alone: sha256(f"split:{seed}:{id}") read as a number in [0, 1) goes to
dev when below `dev_fraction`. So a row's part never depends on which other rows a copy of the
dataset holds (the hub's 200 rows or the offline slice's 4-26), the two parts are disjoint and
cover every row, and the same seed gives the same split everywhere. `part: all` is no split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

PARTS = ("all", "dev", "test")
T = TypeVar("T")


@dataclass(frozen=True)
class RowSplit:
    part: str = "all"
    dev_fraction: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise ValueError(f"split.part must be one of {', '.join(PARTS)}, got {self.part!r}")
        if not 0.0 < self.dev_fraction < 1.0:
            raise ValueError(f"split.dev_fraction must be in (0, 1), got {self.dev_fraction!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"split.seed must be an integer, got {self.seed!r}")

    @classmethod
    def from_config(cls, data: Mapping[str, Any] | None) -> RowSplit:
        data = dict(data or {})
        unknown = sorted(set(data) - {"part", "dev_fraction", "seed"})
        if unknown:
            raise ValueError(f"unknown split keys {unknown}; allowed: part, dev_fraction, seed")
        return cls(
            part=str(data.get("part", "all")),
            dev_fraction=float(data.get("dev_fraction", 0.5)),
            seed=data.get("seed", 0),
        )

    @property
    def active(self) -> bool:
        return self.part != "all"

    def part_of(self, row_id: str) -> str:
        """ "dev" or "test" for one row id."""
        digest = hashlib.sha256(f"split:{self.seed}:{row_id}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        return "dev" if u < self.dev_fraction else "test"

    def select(self, examples: Sequence[T]) -> list[T]:
        """The examples (anything with an `id`) of this part, in their order."""
        if not self.active:
            return list(examples)
        return [ex for ex in examples if self.part_of(ex.id) == self.part]

    def describe(self) -> str:
        if not self.active:
            return "all rows (no dev/test split)"
        share = self.dev_fraction if self.part == "dev" else 1 - self.dev_fraction
        return f"{self.part} rows (~{share:.0%} of each dataset by a hash of the row id, seed {self.seed})"

"""Sharded runs: which shard owns a row, where each shard writes, and reading the shards as one run.

A run with ``shard.count: N`` (N > 1) is N independent jobs, ``shard.index`` 0..N-1, each a full
run (its own model load, warm-ups, records, resume and lock) over its share of the rows. Layout::

    <run dir>/                        the run's directory, as an unsharded run of the same name= has it
        shards/<i>-of-<N>/            shard i: config.yaml, run.json (with `shard`), records.jsonl, summaries
        config.yaml, run.json,        written by `lazybench merge <run dir>` (and by rescore): the merged
        summary.md, summary_*.csv     run's summaries; records stay in the shard folders, never copied

So shards never share a file or a lock, each resumes on its own, and anything that reads records
(`lazybench.analysis.load.load_runs`, hence analyze, protocol select/report) treats every
``shards/<i>-of-<N>`` folder as part of the run above it: their records get that run's `run_dir`,
and `lazybench.aggregate` sums them as one run. The shards must agree on everything that decides
outputs (the config apart from `shard.index` and the keys a resume may change); a mix is refused
with one line, and missing shards are said ("2 of 4 shards present").

Assignment: sha256(f"shard:{row id}") modulo N. A hash of the row id, not a position in the row
list, so a row's shard never depends on which other rows the suite holds: adding datasets, a
`suite.limit`, or a dev/test split (which hashes the id with another prefix, so the two are
independent) leaves every other row where it was, and a resumed shard never finds foreign rows. A
hash spreads each dataset's rows over the shards, so long and short prompts balance in expectation:
with the 3,750 LongBench rows over 8 shards a shard holds 469 +- 20 rows (one standard deviation).
Round-robin over sorted ids would balance exactly but reshuffles every row after an inserted one.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lazybench.runner.common import OUTPUT_FREE_KEYS, flatten

SHARDS_DIR = "shards"
_NAME = re.compile(r"^(\d+)-of-(\d+)$")
#: Config keys that may differ between the shards of one run: they change no output
#: (those a resumed sweep job may change, lazybench.runner.common), plus the shard's own index.
FREE_KEYS = OUTPUT_FREE_KEYS | {
    "debug", "dry_run", "estimate", "shard.index", "model.id", "model.device", "model.requires"
}  # fmt: skip


class ShardError(ValueError):
    """Shards that cannot be read as one run (mixed configs or shard counts)."""


def shard_of(row_id: str, count: int) -> int:
    """The shard (0..count-1) that owns a row: a hash of its id (module docstring)."""
    digest = hashlib.sha256(f"shard:{row_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """`shard.index` of `shard.count`; count 1 is an unsharded run."""

    index: int = 0
    count: int = 1

    @classmethod
    def from_config(cls, data: Any) -> Shard:
        """From the config's `shard:` node (None: unsharded); ValueError with one line if invalid."""
        data = dict(data or {})
        unknown = sorted(set(data) - {"index", "count"})
        if unknown:
            raise ValueError(f"shard has no key(s) {unknown}; it takes index and count")
        index, count = data.get("index", 0), data.get("count", 1)
        for key, value in (("count", count), ("index", index)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"shard.{key} must be an integer, got {value!r}")
        if count < 1:
            raise ValueError(f"shard.count must be >= 1, got {count}")
        if not 0 <= index < count:
            raise ValueError(
                f"shard.index must be in 0..{count - 1} (shard.count={count}), got {index}; "
                f"launch the shards with -m shard.index='range({count})' shard.count={count}"
            )
        return cls(index, count)

    @property
    def active(self) -> bool:
        return self.count > 1

    @property
    def name(self) -> str:
        return f"{self.index}-of-{self.count}"

    def owns(self, row_id: str) -> bool:
        return not self.active or shard_of(row_id, self.count) == self.index

    def run_dir(self, parent: Path) -> Path:
        """Where this shard writes: the run dir itself when unsharded, else parent/shards/<i>-of-<N>."""
        return Path(parent) / SHARDS_DIR / self.name if self.active else Path(parent)


def parse_shard_dir(folder: Path) -> Shard | None:
    """The shard a folder holds, when it is `<run>/shards/<i>-of-<N>`; else None."""
    found = _NAME.match(folder.name)
    if not found or folder.parent.name != SHARDS_DIR:
        return None
    index, count = int(found.group(1)), int(found.group(2))
    return Shard(index, count) if 0 <= index < count else None


def owner(folder: Path) -> Path:
    """The run a records folder belongs to: the run above a shard folder, else the folder itself."""
    return folder.parent.parent if parse_shard_dir(folder) else folder


@dataclass
class ShardSet:
    """The shards of one run that are at hand (on disk, or the ones a caller loaded)."""

    run_dir: Path
    count: int
    present: dict[int, Path] = field(default_factory=dict)

    @property
    def missing(self) -> list[int]:
        return [i for i in range(self.count) if i not in self.present]

    def note(self) -> str:
        """'runs/x: 2 of 4 shards present (missing 1-of-4, 3-of-4)', or '... all 4 shards present'."""
        if not self.missing:
            return f"{self.run_dir}: all {self.count} shards present"
        names = ", ".join(f"{i}-of-{self.count}" for i in self.missing)
        return (
            f"{self.run_dir}: {len(self.present)} of {self.count} shards present (missing {names}); "
            "its tables cover only the present shards' rows"
        )


def shard_dirs(run_dir: Path) -> dict[Shard, Path]:
    """Every `shards/<i>-of-<N>` folder of a run (empty when the run is not sharded)."""
    root = Path(run_dir) / SHARDS_DIR
    if not root.is_dir():
        return {}
    found = {parse_shard_dir(p): p for p in sorted(root.iterdir()) if p.is_dir()}
    return {s: p for s, p in found.items() if s is not None}


def finished_empty(folder: Path) -> bool:
    """A shard that finished owning no rows (a small run over many shards): it has no records file."""
    try:
        info = json.loads((Path(folder) / "run.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return info.get("status") == "finished" and not info.get("rows")


def shard_set(run_dir: Path, folders: list[Path] | None = None) -> ShardSet | None:
    """The run's shards (those in `folders` when given, else all on disk), checked to agree; None when
    the run has none. Raises ShardError for shards of different counts or configs."""
    run_dir = Path(run_dir)
    shards = (
        {parse_shard_dir(Path(f)): Path(f) for f in folders} if folders is not None else shard_dirs(run_dir)
    )
    shards = {s: p for s, p in shards.items() if s is not None}
    if not shards:
        return None
    counts = sorted({s.count for s in shards})
    if len(counts) > 1:
        raise ShardError(
            f"{run_dir} holds shards of {len(counts)} different shard counts ({', '.join(map(str, counts))}): "
            "they split the rows differently and cannot be merged; keep one shard.count per run name"
        )
    check_same_config(run_dir, shards)
    return ShardSet(
        run_dir, counts[0], {s.index: p for s, p in sorted(shards.items(), key=lambda x: x[0].index)}
    )


def _free(key: str) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in FREE_KEYS)


def load_config(folder: Path) -> dict[str, Any] | None:
    """A run folder's config.yaml as a dict (None when it has none)."""
    import yaml

    path = Path(folder) / "config.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None


def check_same_config(run_dir: Path, shards: dict[Shard, Path]) -> None:
    """Refuse shards whose configs differ in anything but the free keys (one line names the first key)."""
    configs = {s: load_config(p) for s, p in shards.items()}
    configs = {s: {k: v for k, v in flatten(c).items() if not _free(k)} for s, c in configs.items() if c}
    if len(configs) < 2:
        return
    (first, ref), *rest = sorted(configs.items(), key=lambda x: x[0].index)
    for shard, conf in rest:
        keys = sorted(k for k in set(ref) | set(conf) if ref.get(k) != conf.get(k))
        if keys:
            k = keys[0]
            raise ShardError(
                f"{run_dir}: shards {first.name} and {shard.name} were made with different configs "
                f"({k}: {ref.get(k)!r} vs {conf.get(k)!r}{f', and {len(keys) - 1} more keys' if len(keys) > 1 else ''}); "
                "shards of one run differ only in shard.index"
            )


def merged_config(shards: ShardSet) -> dict[str, Any] | None:
    """The run's config: its first present shard's, with `shard.index` cleared (the run is every shard)."""
    first = next(iter(shards.present.values()), None)
    config = load_config(first) if first is not None else None
    if config is not None:
        config["shard"] = {"index": None, "count": shards.count}
    return config


def merged_info(shards: ShardSet) -> dict[str, Any]:
    """The run's run.json for a merged run: the first present shard's, with every shard's counts."""
    infos = {}
    for index, folder in shards.present.items():
        path = folder / "run.json"
        try:
            infos[index] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, json.JSONDecodeError):
            infos[index] = {}
    first = next(iter(infos.values()), {})
    keep = ("model", "device", "num_layers", "context_limit", "data_dir", "data_source", "methods",
            "method_under_test", "versions")  # fmt: skip
    return {
        **{k: first[k] for k in keep if k in first},
        "run_dir": str(shards.run_dir),
        "status": "merged",
        "rows": sum(int(i.get("rows") or 0) for i in infos.values()),
        "records": sum(int(i.get("records") or 0) for i in infos.values()),
        "shards": {
            "count": shards.count,
            "present": [f"{i}-of-{shards.count}" for i in shards.present],
            "missing": [f"{i}-of-{shards.count}" for i in shards.missing],
            "status": {f"{i}-of-{shards.count}": info.get("status") for i, info in infos.items()},
        },
    }


def run_info_of(run_dir: Path) -> dict[str, Any]:
    """A sharded run's run.json when `lazybench merge` has not written one: merged from its shards."""
    try:
        found = shard_set(run_dir)
    except ShardError:
        return {}
    return merged_info(found) if found else {}

"""The runner's side of sharded runs: the `shard:` config, the shard's rows and its run directory.

`lazybench shard.index=i shard.count=N ...` runs shard i of N: the rows whose id hashes to i
(lazybench.shards explains the choice), written into ``<run dir>/shards/<i>-of-<N>/``. The run dir
is the one the same run unsharded would use (``${output_dir}/${name}``), also under Hydra's
multirun, where every job would otherwise get its own numbered sweep folder: so

    lazybench -m experiment=paper_llama2 shard.index='range(8)' shard.count=8 hydra/launcher=slurm

puts all eight shards under runs/paper-llama2-7b-chat-dev/shards/, where `lazybench merge`,
analyze, rescore and protocol select/report read them as one run. (A multirun that sweeps other
keys besides shard.index must give each point its own name=, or its jobs meet in one shard folder
and are refused there: lazybench.runner.config.check_resumable.)
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from lazybench.records import RECORDS_FILE
from lazybench.runner.common import RunConfigError, absolute, to_plain
from lazybench.shards import SHARDS_DIR, Shard, shard_dirs


def resolve_shard(cfg: DictConfig) -> Shard:
    """The run's `shard:` node, validated (one line naming what is wrong)."""
    try:
        return Shard.from_config(to_plain(cfg.get("shard")))
    except ValueError as err:
        raise RunConfigError(str(err)) from None


def shard_parent(cfg: DictConfig, multirun: bool) -> Path | None:
    """Where a sharded job's run dir is when none is given: ${output_dir}/${name} under a multirun
    (not the job's numbered sweep folder), else None (the runner's own default, Hydra's run dir)."""
    if multirun and resolve_shard(cfg).active:
        return absolute(cfg.output_dir) / str(cfg.name)
    return None


def check_layout(parent: Path, shard: Shard) -> None:
    """Refuse to mix a sharded and an unsharded run (or two shard counts) under one run dir: the
    readers would count rows twice."""
    if shard.active and (Path(parent) / RECORDS_FILE).is_file():
        raise RunConfigError(
            f"{parent} holds an unsharded run's records; shard {shard.name} would be read as part of it. "
            "Use another name= (or output_dir=) for the sharded run"
        )
    counts = sorted({s.count for s in shard_dirs(parent)} - {shard.count if shard.active else 0})
    if counts:
        what = "shards of" if shard.active else "a sharded run:"
        raise RunConfigError(
            f"{parent} holds {what} shard.count={counts[0]} ({parent / SHARDS_DIR}); run it with "
            f"shard.count={counts[0]}, or use another name= (or output_dir=)"
        )

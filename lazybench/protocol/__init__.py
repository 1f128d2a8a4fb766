"""The operating-point protocol of the paper's Tables 1-2 and Figure 5 (docs/protocol.md).

- `families`: each method's settings spanning FLOP-ideal TTFT speedups, solved from the model's shape
  with `cost`'s analytic prefill FLOPs; `sweep` expands a config's `sweep:` key into its methods;
- `split`: the dev/test split of rows by a seeded hash of the row id;
- `report`: `select_points` (a rule from `lazybench.analysis.operating_points` on a sweep run, written
  as a points config by `points`) and `protocol_report` (Tables 1, 2 and Figure 5 at those points);
- `phases`: what a protocol preset's dry run adds (both phases); `cli`: `lazybench protocol ...`.
"""

from lazybench.protocol.cost import ModelShape, ideal_speedup, prefill_flops
from lazybench.protocol.families import FAMILIES, Setting, SweepSpec, expand
from lazybench.protocol.split import RowSplit

__all__ = [
    "FAMILIES",
    "ModelShape",
    "RowSplit",
    "Setting",
    "SweepSpec",
    "expand",
    "ideal_speedup",
    "prefill_flops",
]

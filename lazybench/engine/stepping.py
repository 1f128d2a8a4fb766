"""The two ways a stage boundary reshapes the rows being computed, without device reads where the
sizes are known on the host.

- Every candidate is a row in hand (prefill, and any stage whose rows are all the visible
  tokens): the kept rows go on, the complement (of known size) waits in the Aux Cache, and nothing
  can be revived, since no row in hand has KV at the boundary layer yet.
- Otherwise (decoding): the rows that go on are the kept tokens without KV at the boundary layer,
  the kept rows in hand plus tokens revived from the Aux Cache. How many is data dependent: one
  device read per boundary, the only one a decode boundary makes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from lazybench.engine.policy import complement_indices, mask_indices
from lazybench.engine.state import EngineInvariantError, TokenState

if TYPE_CHECKING:
    from lazybench.engine.engine import StepFlow


def park_pruned_rows(state: TokenState, flow: StepFlow, start: int, kept: torch.Tensor) -> None:
    """The rows in hand are the candidates, in order; keep rows `kept` and park the others."""
    pruned_rows = complement_indices(kept, flow.batch.numel())
    pruned = flow.batch.index_select(0, pruned_rows)
    state.aux[start].index_copy_(0, pruned, flow.hidden[0].index_select(0, pruned_rows))
    if state.has_aux is not None:
        state.has_aux[start].index_fill_(0, pruned, True)
    flow.hidden = flow.hidden.index_select(1, kept)
    flow.batch, flow.new_rows = flow.active, False


def resume_rows(state: TokenState, flow: StepFlow, start: int, check: bool = False) -> None:
    """The rows for the stage at `start`: active tokens without KV there, in position order.

    Rows in hand that were not kept are parked in the Aux Cache; kept tokens that lack KV and are
    not in hand come back from it. All rows pass through the Aux Cache buffer, which merges them in
    position order. When the newest token alone is in hand and alone goes on (it is always kept
    and never has KV yet), nothing is parked or revived and the rows stay as they are.
    """
    lacking = ~state.has_kv[start].index_select(0, flow.active)
    n_rows = int(lacking.sum())  # the decode boundary's one device read: how many rows go on
    if n_rows == 1 and flow.batch.numel() == 1:
        return
    rows = flow.active.index_select(0, mask_indices(lacking, n_rows))
    if check:
        check_revival(state, flow.batch, rows, start)
    aux = state.aux[start]
    aux.index_copy_(0, flow.batch, flow.hidden[0])  # every row in hand is parked here ...
    if state.has_aux is not None:  # (kept up to date for the invariant checks only)
        state.has_aux[start].index_fill_(0, flow.batch, True)
        state.has_aux[start].index_fill_(0, rows, False)  # ... except those going on; revived ones leave
    flow.hidden = aux.index_select(0, rows)[None]
    flow.batch, flow.new_rows = rows, False


def check_revival(state: TokenState, in_hand: torch.Tensor, rows: torch.Tensor, start: int) -> None:
    """Every row not in hand must come from the Aux Cache (reads the device: checks only)."""
    revived = rows[~torch.isin(rows, in_hand)]
    if not bool(state.has_aux[start][revived].all()):
        raise EngineInvariantError(f"token without KV or Aux Cache entry at layer {start}")

"""What the KV-cache selection rivals (StreamingLLM, SnapKV and H2O, each in its own module) share:
the per-head reads their policies set on the state (`HeadKeep`).

All three run the full prefill and then let decoding read only part of the prompt's KV, chosen per
layer and per KV head: their policies set a `HeadKeep` (this module's `KVReads`, the engine's hook
for a method's own cache reads) on the state, and each head reads its own positions with one
gather per layer. They save decoding work and KV memory, never prefill (their TTFT is the
baseline's plus their selection cost). Choices shared by all three:

- Only full-attention layers select; sliding-window layers (Mistral v0.1, Gemma 2/3's local layers)
  keep reading their window through the model's own mask, which already bounds them.
- Grouped-query attention: selection is per KV head, with the scores of the query heads that share
  a KV head averaged (SnapKV, StreamingLLM) or summed (H2O, as its reference code's `sum_group`), so
  memory really shrinks per KV head. The original papers used multi-head models.
- Positions are the original ones (RoPE is applied once, when the KV is computed); StreamingLLM's
  re-indexing of positions inside its rolling cache matters only past the pretraining length.
- Evicted KV is not freed (buffers are allocated once for the whole generation); kv_tokens_per_layer
  reports the entries each head keeps, and FLOPs count the keys each head reads. A trace's `active`
  lists still show the whole context: the per-head positions are `HeadKeep.positions()`.
"""

from __future__ import annotations

import torch

from lazybench.engine import KVReads


class HeadKeep(KVReads):
    """Per selecting layer and KV head, the cached positions that head reads in decoding (every
    head keeps the same number); new tokens are visible to every head. Layers not selecting read
    the cache as usual."""

    def __init__(self, num_layers: int, capacity: int, device: torch.device) -> None:
        self.num_layers, self.capacity, self.device = num_layers, capacity, device
        self.keep: torch.Tensor | None = None  # [rows, kv_heads, capacity]; the first `length` valid
        self.length = 0
        self.rows: list[int] = [-1] * num_layers  # layer -> row of `keep`, or -1
        self._index: torch.Tensor | None = None

    @classmethod
    def of(cls, state) -> HeadKeep:
        """The state's HeadKeep, made on first use."""
        if state.kv_reads is None:
            state.kv_reads = cls(state.num_layers, state.capacity, state.device)
        return state.kv_reads

    def set(self, layers: list[int], positions: torch.Tensor) -> None:
        """From the next step on, layer `layers[r]` head h attends only to `positions[r, h]` (plus
        the new tokens)."""
        if positions.dim() != 3 or positions.shape[0] != len(layers):
            raise ValueError(
                f"positions must be [{len(layers)} layers, kv_heads, n], got {tuple(positions.shape)}"
            )
        rows, heads, n = positions.shape
        if self.keep is None or self.keep.shape[:2] != (rows, heads):
            self.keep = torch.empty(rows, heads, self.capacity, dtype=torch.long, device=self.device)
        self.keep[:, :, :n] = positions
        self.length = n
        self.rows = [-1] * self.num_layers
        for r, layer in enumerate(layers):
            self.rows[layer] = r

    def positions(self) -> torch.Tensor:
        """[rows, kv_heads, length] view of the kept positions."""
        return self.keep[:, :, : self.length]

    # --- the engine's KVReads hooks
    def reads(self, layer: int) -> bool:
        return self.rows[layer] >= 0

    def append(self, positions: torch.Tensor) -> None:
        n = positions.numel()
        self.keep[:, :, self.length : self.length + n] = positions
        self.length += n

    def begin_stage(self) -> None:
        self._index = None  # expanded to the head dim on the first read of the stage

    def read(self, layer, keys, values):
        if self._index is None:
            self._index = self.keep[:, :, : self.length, None].expand(-1, -1, -1, keys.shape[-1])
        index = self._index[self.rows[layer]]
        return keys[0].gather(1, index)[None], values[0].gather(1, index)[None]

    def keys_read(self, layer: int) -> int:
        return self.length


def kv_heads(state, layers: list[int]) -> int:
    return state.keys[layers[0]].shape[1]


def same_for_all(positions: torch.Tensor, rows: int, heads: int) -> torch.Tensor:
    return positions[None, None].expand(rows, heads, -1)

"""Per-generation memory of the engine: the KV cache, the Aux Cache, and what was computed where.

Everything is indexed by token position. Layer l's KV buffer holds, at slot p, the key/value of the
token at position p if that token was ever computed at layer l (`has_kv[l, p]`). Indexing by
position (instead of appending) means pruning leaves gaps but never re-indexes, a revived token's
KV lands where it belongs, and gathering "the tokens active at this layer" is one index_select.
Buffers are allocated once for prompt + max_new_tokens, so decoding never re-allocates the cache
(transformers' DynamicCache concatenates at every step).

The Aux Cache at boundary b holds the hidden state entering layer b of tokens that were computed up
to layer b-1 but pruned at b, so a later step can resume them at layer b instead of recomputing
from layer 0.

This object is also what the attention modules receive as `cache`: transformers calls
`cache.update(key, value, layer_idx)` after RoPE and attends over what it returns. The engine sets
the write/read plan once per stage (`plan_stage`), so `update` does no bookkeeping of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class StageTrace:
    """What one stage of one step did; kept only when tracing (tests, the token-inspection notebook)."""

    step: int
    stage: int
    first_layer: int
    end_layer: int
    active: list[int]
    computed: list[int]
    revived: list[int]
    pruned_to_aux: list[int]


@dataclass
class TokenState:
    num_layers: int
    capacity: int
    hidden_size: int
    boundary_layers: tuple[int, ...]
    device: torch.device
    dtype: torch.dtype
    keys: list[torch.Tensor | None] = field(init=False)
    values: list[torch.Tensor | None] = field(init=False)
    has_kv: torch.Tensor = field(init=False)
    compute_count: torch.Tensor = field(init=False)
    aux: dict[int, torch.Tensor] = field(init=False)
    has_aux: dict[int, torch.Tensor] = field(init=False)
    length: int = 0
    steps: int = 0
    trace: list[StageTrace] | None = None
    # the current stage's plan, read by update()
    _write_slice: slice | None = None
    _write_index: torch.Tensor | None = None
    _read_self: bool = True
    _read_slice: slice | None = None
    _read_index: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.keys = [None] * self.num_layers
        self.values = [None] * self.num_layers
        self.has_kv = torch.zeros(self.num_layers, self.capacity, dtype=torch.bool, device=self.device)
        self.compute_count = torch.zeros(
            self.num_layers, self.capacity, dtype=torch.int32, device=self.device
        )
        self.aux = {
            b: torch.empty(self.capacity, self.hidden_size, dtype=self.dtype, device=self.device)
            for b in self.boundary_layers
        }
        self.has_aux = {
            b: torch.zeros(self.capacity, dtype=torch.bool, device=self.device) for b in self.boundary_layers
        }

    # --- the plan for one stage -------------------------------------------------------------
    def plan_stage(
        self, write: torch.Tensor, write_contiguous: bool, read: str, active: torch.Tensor
    ) -> None:
        """Where update() stores the new KV, and which cached rows it hands to attention.

        read: "self" (attend only to the rows being computed, as in prefill), "prefix" (all of
        positions [0, length)) or "index" (the active positions, gathered).
        """
        if write_contiguous:
            start = int(write[0])
            self._write_slice, self._write_index = slice(start, start + write.numel()), None
        else:
            self._write_slice, self._write_index = None, write
        self._read_self = read == "self"
        self._read_slice = slice(0, self.length) if read == "prefix" else None
        self._read_index = active if read == "index" else None

    # --- transformers' Cache protocol (the part attention modules call) -----------------------
    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        kbuf = self.keys[layer_idx]
        if kbuf is None:
            shape = (1, key.shape[1], self.capacity, key.shape[3])
            kbuf = self.keys[layer_idx] = key.new_empty(shape)
            self.values[layer_idx] = value.new_empty((1, value.shape[1], self.capacity, value.shape[3]))
        vbuf = self.values[layer_idx]
        if self._write_slice is not None:
            kbuf[:, :, self._write_slice] = key
            vbuf[:, :, self._write_slice] = value
        else:
            kbuf.index_copy_(2, self._write_index, key)
            vbuf.index_copy_(2, self._write_index, value)
        if self._read_self:
            return key, value
        if self._read_slice is not None:
            return kbuf[:, :, self._read_slice], vbuf[:, :, self._read_slice]
        return kbuf.index_select(2, self._read_index), vbuf.index_select(2, self._read_index)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length

    # --- accounting ---------------------------------------------------------------------------
    def kv_tokens_per_layer(self) -> list[int]:
        return self.has_kv[:, : self.length].sum(dim=1).tolist()

    def prompt_computations_per_layer(self, prompt_len: int) -> list[int]:
        return self.compute_count[:, :prompt_len].sum(dim=1).tolist()

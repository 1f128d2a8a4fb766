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

KV-selection methods (SnapKV, H2O, StreamingLLM) keep, per layer and per KV head, a subset of the
cached positions for decoding (`head_keep`, set by their policy once per step). On those layers a
decode step reads each head's own positions with one gather instead of the shared index_select.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    masked_keys: int | None = None  # keys left unmasked when the stage reads the whole prefix masked
    # per-head KV selection (decode steps only): rows of head_keep are the selecting layers, in order
    head_keep: torch.Tensor | None = None  # [rows, kv_heads, capacity] positions; first head_len valid
    head_len: int = 0
    head_rows: list[int] | None = None  # layer -> row of head_keep, or -1 where the layer reads as usual
    _read_heads: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self._positions = torch.arange(self.capacity, device=self.device)
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

    def arange(self, n: int) -> torch.Tensor:
        """Positions 0..n-1 (a view: no allocation per step)."""
        return self._positions[:n]

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
        self._read_heads = None
        if self.head_keep is not None and read != "self":
            head_dim = self.keys[self.head_rows.index(0)].shape[-1]
            self._read_heads = self.head_keep[:, :, : self.head_len, None].expand(-1, -1, -1, head_dim)

    # --- per-head KV selection (set by KV-selection policies, once per step) -------------------
    def set_head_keep(self, layers: Sequence[int], positions: torch.Tensor) -> None:
        """From the next step on, layer `layers[r]` head h attends only to `positions[r, h]` (plus the
        new tokens, appended by the engine). Every head keeps the same number of positions."""
        if positions.dim() != 3 or positions.shape[0] != len(layers):
            raise ValueError(
                f"positions must be [{len(layers)} layers, kv_heads, n], got {tuple(positions.shape)}"
            )
        rows, heads, n = positions.shape
        if self.head_keep is None or self.head_keep.shape[:2] != (rows, heads):
            self.head_keep = torch.empty(rows, heads, self.capacity, dtype=torch.long, device=self.device)
        self.head_keep[:, :, :n] = positions
        self.head_len = n
        self.head_rows = [-1] * self.num_layers
        for r, layer in enumerate(layers):
            self.head_rows[layer] = r

    def append_head_keep(self, positions: torch.Tensor) -> None:
        """New tokens are visible to every head of every selecting layer."""
        n = positions.numel()
        self.head_keep[:, :, self.head_len : self.head_len + n] = positions
        self.head_len += n

    def head_positions(self) -> torch.Tensor:
        """[rows, kv_heads, head_len] view of the kept positions."""
        return self.head_keep[:, :, : self.head_len]

    # --- transformers' Cache protocol (the part attention modules call) -----------------------
    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        kbuf = self.keys[layer_idx]
        if kbuf is None:
            shape = (1, key.shape[1], self.capacity, key.shape[3])
            # Zeroed, not empty: a masked decode read multiplies never-written slots by a zero
            # attention weight, and 0 * (garbage NaN/inf) would poison the hidden state.
            kbuf = self.keys[layer_idx] = key.new_zeros(shape)
            self.values[layer_idx] = value.new_zeros((1, value.shape[1], self.capacity, value.shape[3]))
        vbuf = self.values[layer_idx]
        if self._write_slice is not None:
            kbuf[:, :, self._write_slice] = key
            vbuf[:, :, self._write_slice] = value
        else:
            kbuf.index_copy_(2, self._write_index, key)
            vbuf.index_copy_(2, self._write_index, value)
        if self._read_heads is not None:
            row = self.head_rows[layer_idx]
            if row >= 0:
                index = self._read_heads[row]
                return kbuf[0].gather(1, index)[None], vbuf[0].gather(1, index)[None]
        if self._read_self:
            return key, value
        if self._read_slice is not None:
            return kbuf[:, :, self._read_slice], vbuf[:, :, self._read_slice]
        return kbuf.index_select(2, self._read_index), vbuf.index_select(2, self._read_index)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length

    # --- accounting ---------------------------------------------------------------------------
    def kv_tokens_per_layer(self) -> list[int]:
        """KV entries a next step could read, per layer (per KV head where heads select their own)."""
        counts = self.has_kv[:, : self.length].sum(dim=1).tolist()
        if self.head_keep is not None:
            counts = [self.head_len if r >= 0 else c for c, r in zip(counts, self.head_rows)]
        return counts

    def prompt_computations_per_layer(self, prompt_len: int) -> list[int]:
        return self.compute_count[:, :prompt_len].sum(dim=1).tolist()

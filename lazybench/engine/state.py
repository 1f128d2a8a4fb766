"""Per-generation memory of the engine: the KV cache, the Aux Cache, and what was computed where.

Everything is indexed by token position. Layer l's KV buffer holds, at slot p, the key/value of the
token at position p if that token was ever computed at layer l (`has_kv[l, p]`). Indexing by
position (instead of appending) means pruning leaves gaps but never re-indexes, a revived token's
KV lands where it belongs, and gathering "the tokens active at this layer" is one index_select.
Buffers are allocated (and the KV zeroed) once for prompt + max_new_tokens when the state is made,
before any clock starts, so no step allocates (transformers' DynamicCache concatenates at every step).

The Aux Cache at boundary b holds the hidden state entering layer b of tokens that were computed up
to layer b-1 but pruned at b, so a later step can resume them at layer b instead of recomputing
from layer 0.

This object is also what the attention modules receive as `cache`: transformers calls
`cache.update(key, value, layer_idx)` after RoPE and attends over what it returns. The engine sets
the write/read plan once per stage (`plan_stage`), so `update` does no bookkeeping of its own.

A method may read the cache its own way while decoding (`KVReads`, set by its policy): the
KV-selection rivals (SnapKV, H2O, StreamingLLM) keep, per layer and per KV head, a subset of the
cached positions, and on those layers each head reads its own positions instead of the shared read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


class EngineInvariantError(RuntimeError):
    """A LazyLLM invariant was violated (a bug, never a user error)."""


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
class StageRecord:
    """A stage as the step saw it, kept as device tensors: turning them into lists needs device
    reads, which happen in `TokenState.stage_traces()`, after the clocks, not inside a step.

    The tensors are the step's own (never written to afterwards), so no copies are made.
    `before` is the rows in hand when the stage began (None in stage 0): pruned = before - active,
    revived = computed - before.
    """

    step: int
    stage: int
    first_layer: int
    end_layer: int
    active: torch.Tensor
    computed: torch.Tensor
    before: torch.Tensor | None

    def to_trace(self) -> StageTrace:
        active, computed = self.active.tolist(), self.computed.tolist()
        before = [] if self.before is None else self.before.tolist()
        kept, had = set(active), set(before)
        return StageTrace(
            self.step, self.stage, self.first_layer, self.end_layer, active, computed,
            revived=[] if self.before is None else [p for p in computed if p not in had],
            pruned_to_aux=[p for p in before if p not in kept],
        )  # fmt: skip


class KVReads:
    """A method's own reads of the KV cache in decoding steps, set on `TokenState.kv_reads` by its
    policy (the KV-selection rivals: `lazybench.methods.kv_selection.HeadKeep`). The engine tells it each
    decode step's new positions (`append`) and each stage that reads the cache (`begin_stage`);
    on the layers it `reads` the cache hands attention `read(...)` instead of its shared read, and
    those layers need no mask (the reader decides what each head sees)."""

    def reads(self, layer: int) -> bool:
        """Whether `layer` reads through this object."""
        return False

    def append(self, positions: torch.Tensor) -> None:
        """The step's new positions, visible from now on."""

    def begin_stage(self) -> None:
        """A stage that reads the cache starts (prepare its indices once, not per layer)."""

    def read(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values layer `layer` attends to, from its whole buffers [1, kv_heads, capacity, d]."""
        raise NotImplementedError

    def keys_read(self, layer: int) -> int:
        """Keys each head reads at `layer` (for FLOPs and KV counts)."""
        raise NotImplementedError


@dataclass
class TokenState:
    num_layers: int
    capacity: int
    hidden_size: int
    boundary_layers: tuple[int, ...]
    device: torch.device
    dtype: torch.dtype
    # per layer (kv_heads, head_dim, dtype): KV buffers allocated and zeroed here, before any clock
    # starts; without them update() allocates a layer's buffers on its first call
    kv_specs: Sequence[tuple[int, int, torch.dtype]] = ()
    # keep per-layer computation counts (the invariant checks); otherwise has_kv is the count
    count_computations: bool = False
    keys: list[torch.Tensor | None] = field(init=False)
    values: list[torch.Tensor | None] = field(init=False)
    has_kv: torch.Tensor = field(init=False)
    compute_count: torch.Tensor | None = field(init=False)
    aux: dict[int, torch.Tensor] = field(init=False)
    has_aux: dict[int, torch.Tensor] | None = field(init=False)
    # boundaries where some token may sit in the Aux Cache (host-side: lets a step skip the revival
    # count where nothing could be revived)
    parked: set[int] = field(init=False)
    length: int = 0
    steps: int = 0
    trace: list[StageRecord] | None = None
    # the current stage's plan, read by update()
    _write_slice: slice | None = None
    _write_index: torch.Tensor | None = None
    _read_self: bool = True
    _read_slice: slice | None = None
    _read_index: torch.Tensor | None = None
    masked_keys: int | None = None  # keys left unmasked when the stage reads the whole prefix masked
    kv_reads: KVReads | None = None  # a method's own cache reads in decoding (KV selection)
    _own_reads: bool = False  # this stage reads through kv_reads where it reads

    def __post_init__(self) -> None:
        dev = self.device
        self._positions = torch.arange(self.capacity, device=dev)
        self.keys = [None] * self.num_layers
        self.values = [None] * self.num_layers
        for layer, (heads, head_dim, dtype) in enumerate(self.kv_specs):
            self.keys[layer] = self._kv_buffer(heads, head_dim, dtype)
            self.values[layer] = self._kv_buffer(heads, head_dim, dtype)
        self.has_kv = torch.zeros(self.num_layers, self.capacity, dtype=torch.bool, device=dev)
        self.compute_count = (
            torch.zeros(self.num_layers, self.capacity, dtype=torch.int32, device=dev)
            if self.count_computations
            else None
        )
        self.aux = {
            b: torch.empty(self.capacity, self.hidden_size, dtype=self.dtype, device=dev)
            for b in self.boundary_layers
        }
        # which tokens sit in the Aux Cache: only the invariant checks read it, so it is kept only then
        self.has_aux = (
            {b: torch.zeros(self.capacity, dtype=torch.bool, device=dev) for b in self.boundary_layers}
            if self.count_computations
            else None
        )
        self.parked = set()
        # [heads, capacity, dim] views of the KV buffers: CPU index_select is several times slower
        # along dim 2 of the 4-D buffer; on a GPU the 4-D gather is one op fewer
        self._kv3 = (
            [(k[0], v[0]) for k, v in zip(self.keys, self.values) if k is not None]
            if dev.type == "cpu" and len(self.kv_specs) == self.num_layers
            else None
        )
        self.rotary: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # layer type -> cos, sin tables

    def _kv_buffer(self, heads: int, head_dim: int, dtype: torch.dtype) -> torch.Tensor:
        # Zeroed, not empty: a masked decode read multiplies never-written slots by a zero attention
        # weight, and 0 * (garbage NaN/inf) would poison the hidden state.
        return torch.zeros(1, heads, self.capacity, head_dim, dtype=dtype, device=self.device)

    def kv_bytes(self) -> int:
        """Bytes held by the KV buffers."""
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values) if t is not None)

    def arange(self, n: int) -> torch.Tensor:
        """Positions 0..n-1 (a view: no allocation per step)."""
        return self._positions[:n]

    # --- the plan for one stage -------------------------------------------------------------
    def plan_stage(
        self, write: torch.Tensor, write_start: int | None, read: str, active: torch.Tensor
    ) -> None:
        """Where update() stores the new KV, and which cached rows it hands to attention.

        write_start: the first position when `write` is a contiguous run (written as a slice), else None.
        read: "self" (attend only to the rows being computed, as in prefill), "prefix" (all of
        positions [0, length)) or "index" (the active positions, gathered).
        """
        if write_start is not None and write.numel() > 1:  # a single row: index_copy_ is one op, not two
            self._write_slice, self._write_index = slice(write_start, write_start + write.numel()), None
        else:
            self._write_slice, self._write_index = None, write
        self._read_self = read == "self"
        self._read_slice = slice(0, self.length) if read == "prefix" else None
        self._read_index = active if read == "index" else None
        self._own_reads = self.kv_reads is not None and read != "self"
        if self._own_reads:
            self.kv_reads.begin_stage()

    def mark_computed(self, start: int, end: int, rows: torch.Tensor) -> None:
        """Layers start..end-1 now hold KV for `rows` (and, when counting, computed them once more)."""
        self.has_kv[start:end].index_fill_(1, rows, True)
        if self.compute_count is not None:
            self.compute_count[start:end, rows] += 1

    # --- rotary embeddings of every position embedded so far (static RoPE only) ----------------
    def remember_rotary(self, emb: dict[str, tuple[torch.Tensor, torch.Tensor]], start: int) -> None:
        """Keep the cos/sin of positions start.. so later stages gather them instead of recomputing."""
        made: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for kind, (cos, sin) in emb.items():
            table = self.rotary.get(kind)
            if table is None:
                table = made.get(id(cos))  # layer types sharing one embedding share one table
                if table is None:
                    shape = (1, self.capacity, cos.shape[-1])
                    table = made[id(cos)] = (cos.new_empty(shape), sin.new_empty(shape))
                    end = start + cos.shape[1]
                    table[0][:, start:end], table[1][:, start:end] = cos, sin
                self.rotary[kind] = table
            elif id(table) not in made:
                made[id(table)] = table
                end = start + cos.shape[1]
                table[0][:, start:end], table[1][:, start:end] = cos, sin

    def rotary_rows(self, positions: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The remembered cos/sin of `positions`, per layer type."""
        out: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for table in self.rotary.values():
            if id(table) not in out:
                out[id(table)] = (table[0].index_select(1, positions), table[1].index_select(1, positions))
        return {kind: out[id(table)] for kind, table in self.rotary.items()}

    def stage_traces(self) -> list[StageTrace] | None:
        """The trace as lists of positions (reads the device: call it after timing)."""
        return None if self.trace is None else [record.to_trace() for record in self.trace]

    # --- transformers' Cache protocol (the part attention modules call) -----------------------
    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        kbuf = self.keys[layer_idx]
        if kbuf is None:
            kbuf = self.keys[layer_idx] = self._kv_buffer(key.shape[1], key.shape[3], key.dtype)
            self.values[layer_idx] = self._kv_buffer(value.shape[1], value.shape[3], value.dtype)
        elif kbuf.shape[1] != key.shape[1] or kbuf.shape[3] != key.shape[3] or kbuf.dtype != key.dtype:
            raise EngineInvariantError(
                f"layer {layer_idx} produced keys {tuple(key.shape)} {key.dtype}, but its KV buffer was "
                f"allocated as {tuple(kbuf.shape)} {kbuf.dtype} from the model config"
            )
        vbuf = self.values[layer_idx]
        if self._write_slice is not None:
            kbuf[:, :, self._write_slice] = key
            vbuf[:, :, self._write_slice] = value
        else:
            kbuf.index_copy_(2, self._write_index, key)
            vbuf.index_copy_(2, self._write_index, value)
        if self._own_reads and self.kv_reads.reads(layer_idx):
            return self.kv_reads.read(layer_idx, kbuf, vbuf)
        if self._read_self:
            return key, value
        if self._read_slice is not None:
            return kbuf[:, :, self._read_slice], vbuf[:, :, self._read_slice]
        index = self._read_index
        if self._kv3 is not None:
            k3, v3 = self._kv3[layer_idx]
            return k3.index_select(1, index)[None], v3.index_select(1, index)[None]
        return kbuf.index_select(2, index), vbuf.index_select(2, index)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length

    # --- accounting ---------------------------------------------------------------------------
    def kv_tokens_per_layer(self) -> list[int]:
        """KV entries a next step could read, per layer (per KV head where heads select their own)."""
        counts = self.has_kv[:, : self.length].sum(dim=1).tolist()
        reads = self.kv_reads
        if reads is not None:
            counts = [reads.keys_read(layer) if reads.reads(layer) else c for layer, c in enumerate(counts)]
        return counts

    def prompt_computations_per_layer(self, prompt_len: int) -> list[int]:
        """Prompt-token computations per layer. Without counts, has_kv is the count: a token has KV at
        a layer iff it was computed there, at most once (the invariants the engine's tests check
        with counting on)."""
        counts = self.compute_count if self.compute_count is not None else self.has_kv
        return counts[:, :prompt_len].sum(dim=1).tolist()

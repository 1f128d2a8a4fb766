"""Counting what a step asks of the host: every aten op it dispatches, and the ones that would make
the host wait for a CUDA device (a synchronisation), on any device.

On CPU nothing waits, so the count is a proxy: an op is classed by what its CUDA kernel needs
(`sync_kind`). `Tensor.tolist` does not dispatch and is patched while counting. With real CUDA
tensors `HostOpCounter(cuda_syncs=True)` also counts the synchronisations CUDA itself reports
(`torch.cuda.set_sync_debug_mode("warn")`, one warning each), which checks the proxy.
See docs/host_path.md.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lazybench.engine import Generation

# the module, not the function `lazybench.engine.generate` that the package exports under its name
generate_module = sys.modules[Generation.__module__]

# Ops that always wait for the device: a value read on the host, or an output whose size the host
# must know before it can allocate it.
ALWAYS_SYNC = frozenset(
    {"item", "_local_scalar_dense", "is_nonzero", "equal", "nonzero", "argwhere", "masked_select", "_unique",
     "_unique2", "unique_dim", "unique_consecutive", "unique_dim_consecutive", "bincount", "allclose"}
)  # fmt: skip
INDEX_OPS = frozenset({"index", "index_put", "index_put_", "_index_put_impl_"})
COPY_OPS = frozenset({"_to_copy", "copy_", "_copy_from"})


def sync_kind(func, args: tuple, kwargs: dict, accelerator: bool) -> str | None:
    """The reason `func(*args, **kwargs)` would synchronise a CUDA stream, or None if it does not.

    `accelerator`: the tensors really are on a device (then copies are judged by their devices);
    on CPU a tensor made from host data (`lift_fresh`) stands for the upload it would need.
    """
    name = func.overloadpacket.__name__
    if name in ALWAYS_SYNC:
        return name
    if name in INDEX_OPS:
        return _index_sync(name, args, kwargs, accelerator)
    if name == "isin":
        elements, test = args[0], args[1]
        if isinstance(elements, torch.Tensor) and isinstance(test, torch.Tensor):
            # isin's sorting path (unique) syncs; its brute-force path is taken for few test elements
            if test.numel() >= 10.0 * elements.numel() ** 0.145:
                return "isin(unique)"
        return None
    if name == "repeat_interleave" and isinstance(args[0], torch.Tensor) and args[0].dim() > 0:
        if kwargs.get("output_size") is None and (len(args) < 2 or isinstance(args[1], torch.Tensor)):
            return "repeat_interleave"
        return None
    if name == "lift_fresh":  # a tensor made from host data: on a device it would be copied there
        return "upload" if not accelerator and args[0].dim() > 0 and args[0].numel() > 0 else None
    if name in COPY_OPS and accelerator:
        src = args[1] if name != "_to_copy" else args[0]
        dst_device = kwargs.get("device") if name == "_to_copy" else args[0].device
        if dst_device is None or not isinstance(src, torch.Tensor) or src.numel() == 0:
            return None
        src_cpu, dst_cpu = src.device.type == "cpu", torch.device(dst_device).type == "cpu"
        if src_cpu != dst_cpu:
            return "download" if dst_cpu else "upload"
    return None


def _index_sync(name: str, args: tuple, kwargs: dict, accelerator: bool) -> str | None:
    """Indexing syncs when an index is a bool mask (its nonzero sets the output size), except where
    index_put_ turns a lone mask with a one-element host value into masked_fill_; writing a host
    scalar through integer indices copies it to the device first (a blocking upload)."""
    self = args[0]
    indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
    given = [i for i in indices if i is not None]
    masks = [i for i in given if i.dtype in (torch.bool, torch.uint8)]
    if name != "index":
        value = args[2] if len(args) > 2 else kwargs.get("values")
        host_value = isinstance(value, torch.Tensor) and value.numel() == 1 and value.device.type == "cpu"
        if host_value and len(given) == 1 and masks:
            return None  # canDispatchToMaskedFill: masked_fill_(mask, value.item()), no sync
        if host_value and value.dim() == 0 and (not accelerator or self.device.type != "cpu"):
            return "upload(scalar)"
    return f"{name}[bool]" if masks else None


@dataclass
class Tally:
    ops: int = 0
    syncs: Counter = field(default_factory=Counter)
    cuda_syncs: int = 0
    rows: int = 0  # row-layers computed (rows x layers): the work the ops were launched for

    @property
    def n_syncs(self) -> int:
        return sum(self.syncs.values())


class HostOpCounter(TorchDispatchMode):
    """Counts aten ops and would-be syncs into the current bucket ("step" or "loop").

    With `cuda_syncs`, the real synchronisations CUDA reports are counted too (sync debug mode,
    one warning each), so the proxy can be checked against the device.
    """

    def __init__(self, accelerator: bool = False, cuda_syncs: bool = False) -> None:
        super().__init__()
        self.accelerator, self.cuda_syncs = accelerator, cuda_syncs
        self.tallies: dict[str, Tally] = {}
        self.current = "loop"
        self._record: list = []
        self._stack = contextlib.ExitStack()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tally = self.tallies.setdefault(self.current, Tally())
        tally.ops += 1
        kind = sync_kind(func, args, kwargs, self.accelerator)
        if kind is not None:
            tally.syncs[kind] += 1
        return func(*args, **kwargs)

    def _flush(self) -> None:
        if self.cuda_syncs:
            n = sum("synchroniz" in str(w.message) for w in self._record)
            self.tallies.setdefault(self.current, Tally()).cuda_syncs += n
            self._record.clear()

    @contextlib.contextmanager
    def bucket(self, name: str) -> Iterator[None]:
        self._flush()
        previous, self.current = self.current, name
        try:
            yield
        finally:
            self._flush()
            self.current = previous

    def take(self) -> dict[str, Tally]:
        """The tallies since the last take (and reset them)."""
        self._flush()
        out, self.tallies = self.tallies, {}
        return out

    def __enter__(self):
        counter = self
        original = torch.Tensor.tolist

        def tolist(tensor):
            counter.tallies.setdefault(counter.current, Tally()).syncs["tolist"] += 1
            return original(tensor)

        stack = self._stack
        stack.callback(setattr, torch.Tensor, "tolist", original)
        torch.Tensor.tolist = tolist
        # the clocks' own torch.cuda.synchronize is not the step's doing
        stack.callback(setattr, generate_module, "sync_device", generate_module.sync_device)
        generate_module.sync_device = lambda device: None
        if self.cuda_syncs:
            self._record = stack.enter_context(warnings.catch_warnings(record=True))
            warnings.simplefilter("always")
            previous = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("warn")
            stack.callback(torch.cuda.set_sync_debug_mode, previous)
        return super().__enter__()

    def __exit__(self, *exc):
        self._flush()
        try:
            return super().__exit__(*exc)
        finally:
            self._stack.close()

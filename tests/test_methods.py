"""The rival methods: each reproduces the baseline at a full budget, and each one's accounting and
selection are checked against an independent computation on small random-init models (plus one
short run each on the real offline model)."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_model

from lazybench.engine import LazyEngine, TokenPolicy, generate
from lazybench.methods import GenerationRequest, build_method, list_methods
from lazybench.methods.gemfilter import GemFilterPolicy
from lazybench.methods.h2o import H2OPolicy
from lazybench.methods.selective_context import token_pieces, unit_starts


@pytest.fixture(autouse=True, scope="module")
def _check_invariants():
    """The engine's device-reading invariant checks (off by default: they stall a GPU) run here."""
    saved = LazyEngine.check_invariants
    LazyEngine.check_invariants = True
    yield
    LazyEngine.check_invariants = saved


RIVALS = ["random_drop", "static", "selective_context", "gemfilter", "streamingllm", "snapkv", "h2o"]
NUM_LAYERS = 6
LLAMA = tiny_model("llama", num_layers=NUM_LAYERS)

# a budget that keeps everything: each must then be the baseline exactly
FULL_BUDGET = {
    "random_drop": {"keep": 1.0},
    "static": {"schedule": {"boundaries": [0.3], "keep": [1.0]}},
    "selective_context": {"keep": 1.0, "compressor": "target", "unit": "token"},
    "gemfilter": {"topk": 10**6},
    "streamingllm": {"window": 10**6},
    "snapkv": {"budget_tokens": 10**6},
    "h2o": {"heavy_ratio": 1.0, "recent_ratio": 1.0},
}
# a budget that really selects, on short prompts
SMALL_BUDGET = {
    "random_drop": {"keep": 0.5, "keep_last": 8},
    "static": {"schedule": {"boundaries": [0.3], "keep": [0.5]}},
    "selective_context": {"keep": 0.5, "compressor": "target", "unit": "token", "keep_last": 8},
    "gemfilter": {"topk": 16, "filter_layer": 2},
    "streamingllm": {"n_sink": 4, "window": 8},
    "snapkv": {"budget_tokens": 20, "window": 8},
    "h2o": {"heavy_ratio": 0.2, "recent_ratio": 0.1},
}


def prompt(n: int, seed: int = 0) -> list[int]:
    return torch.randint(3, 256, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def run(name: str, params: dict, model=LLAMA, ids=None, new_tokens: int = 6, tokenizer=None, seed: int = 0):
    method = build_method(name, **dict(params))
    method.setup(model, tokenizer)
    ids = prompt(48) if ids is None else ids
    return method.run(model, GenerationRequest(ids, new_tokens, keep_logits=True, seed=seed))


def capture_state(method) -> dict:
    """Make `method` record its engine's TokenState and the key count each attention call reads."""
    seen: dict = {"reads": []}
    make_engine = method.engine

    def engine(model):
        e = make_engine(model)
        new_state = e.new_state

        def keep(*args, **kwargs):
            state = seen["state"] = new_state(*args, **kwargs)
            update = state.update

            def recording_update(key, value, layer_idx, *a, **k):
                keys, values = update(key, value, layer_idx, *a, **k)
                # keys attention really uses: all returned, or the unmasked ones of a masked read
                seen["reads"].append((state.steps - 1, layer_idx, state.masked_keys or keys.shape[2]))
                return keys, values

            state.update = recording_update
            return state

        e.new_state = keep
        return e

    method.engine = engine
    return seen


def assert_same_run(result, reference, tol: float = 1e-4) -> None:
    assert result.tokens == reference.tokens
    for step, (ours, theirs) in enumerate(zip(result.step_logits, reference.step_logits)):
        diff = (ours - theirs).abs().max().item()
        assert diff <= tol, f"step {step}: max |logit diff| {diff}"


# --- registry ------------------------------------------------------------------------------------
def test_every_rival_is_registered_with_labels() -> None:
    assert set(RIVALS) <= set(list_methods())
    labels = set()
    for name in RIVALS:
        method = build_method(name)
        assert method.saves in ("prefill", "decode", "both")
        assert isinstance(method.query_aware, bool)
        labels.add(method.label())
        assert build_method(name, **method.params()).params() == method.params()  # configs round-trip
    assert len(labels) == len(RIVALS)
    assert build_method("random_drop").stochastic and not build_method("snapkv").stochastic


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("random_drop", {"keep": 0.0}, "keep"),
        ("snapkv", {"budget_tokens": 32, "window": 32}, "budget_tokens > window"),
        ("snapkv", {"kernel": 4}, "odd"),
        ("h2o", {"recent_size": 0}, "recent_size >= 1"),
        ("selective_context", {"unit": "paragraph"}, "unit"),
        ("gemfilter", {"filter_depth": 1.0}, "filter_depth"),
        ("streamingllm", {"window": 0}, "window >= 1"),
    ],
)
def test_bad_parameters_are_rejected(name, params, message) -> None:
    with pytest.raises(ValueError, match=message):
        build_method(name, **params)


# --- exactness at a full budget ------------------------------------------------------------------
@functools.cache
def tiny(family: str):
    return LLAMA if family == "llama" else tiny_model(family, num_layers=NUM_LAYERS)


@functools.cache
def baseline(family: str):
    return run("baseline", {}, tiny(family), new_tokens=4)


@pytest.mark.parametrize("name", RIVALS)
@pytest.mark.parametrize("family", ["llama", "gemma3"])  # GQA; Gemma 3 adds sliding-window layers
def test_full_budget_is_the_baseline(name: str, family: str) -> None:
    base = baseline(family)
    result = run(name, FULL_BUDGET[name], tiny(family), new_tokens=4)
    assert_same_run(result, base)
    assert (result.first_logits - base.first_logits).abs().max().item() <= 1e-4
    assert result.pct_prompt_computed == pytest.approx(100.0)
    assert not result.pruned


@pytest.mark.parametrize("name", RIVALS)
def test_small_budget_runs_and_reports_against_the_original_prompt(name: str) -> None:
    result = run(name, SMALL_BUDGET[name])
    assert len(result.tokens) == 6 and all(math.isfinite(x) for x in result.first_logits.tolist())
    assert (result.original_prompt_tokens or result.prompt_tokens) == 48
    assert result.full_prefill_flops == baseline("llama").full_prefill_flops
    assert 0 < result.pct_prompt_computed <= 100.0


# --- random drop ---------------------------------------------------------------------------------
def test_random_drop_computes_the_kept_fraction_at_every_layer() -> None:
    ids = prompt(200)
    result = run("random_drop", {"keep": 0.5}, ids=ids, new_tokens=2, seed=3)
    assert result.prompt_tokens == 100 and result.original_prompt_tokens == 200
    assert result.computed_per_layer == [100] * NUM_LAYERS
    assert result.pct_prompt_computed == pytest.approx(50.0)
    assert result.pruned and result.prompt_rewrite_s > 0.0
    method = build_method("random_drop", keep=0.5)
    kept = method.kept_positions(200, seed=3)
    assert len(kept) == 100 and kept == sorted(set(kept))
    assert kept[0] == 0 and kept[-64:] == list(range(136, 200))  # BOS and the question tail
    assert kept == method.kept_positions(200, seed=3)  # seeded
    assert kept != method.kept_positions(200, seed=4)
    assert method.kept_positions(30, seed=0) == list(range(15, 30))  # the tail has priority


# --- static pruning ------------------------------------------------------------------------------
def test_static_prunes_once_and_decoding_reads_only_the_kept_prompt() -> None:
    method = build_method("static")  # default: boundary at 30% depth (layer 1 of 6), keep 50%
    seen = capture_state(method)
    method.setup(LLAMA, None)
    result = method.run(LLAMA, GenerationRequest(prompt(48), 5))
    assert result.prefill_rows_per_layer == [48] + [24] * (NUM_LAYERS - 1)
    assert result.computed_per_layer == [48] + [24] * (NUM_LAYERS - 1)  # no revival in decoding
    state = seen["state"]
    assert state.has_kv[1:, :48].sum(dim=1).tolist() == [24] * (NUM_LAYERS - 1)
    for step, layer, n_keys in seen["reads"]:
        if step > 0:  # the prompt's kept half plus the generated tokens, from layer 1 on
            assert n_keys == (48 + step if layer == 0 else 24 + step)


# --- GemFilter -----------------------------------------------------------------------------------
def gemfilter_reference(model, ids: list[int], layer: int, k: int) -> list[int]:
    """GemFilter's selection recomputed from the plain model: q_last . K^T at `layer`, summed over
    heads, average-pooled (kernel 5), top k, in prompt order."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    x = torch.tensor([ids])
    n = x.shape[1]
    with torch.no_grad():
        hidden = model(x, output_hidden_states=True).hidden_states[layer]  # the input of `layer`
        block = model.model.layers[layer]
        h = block.input_layernorm(hidden)
        attn, cfg = block.self_attn, model.config
        d = cfg.hidden_size // cfg.num_attention_heads
        q = attn.q_proj(h).view(1, n, -1, d).transpose(1, 2)
        kk = attn.k_proj(h).view(1, n, -1, d).transpose(1, 2)
        cos, sin = model.model.rotary_emb(h, torch.arange(n)[None])
        q, kk = apply_rotary_pos_emb(q, kk, cos, sin)
        kk = kk.repeat_interleave(q.shape[1] // kk.shape[1], dim=1)
        scores = torch.einsum("hd,htd->t", q[0, :, -1], kk[0])
        pooled = F.avg_pool1d(scores[None, None], 5, stride=1, padding=2)[0, 0]
    return sorted(torch.topk(pooled, k).indices.tolist())


def test_gemfilter_selects_by_the_filter_layers_last_query_and_runs_the_plain_model_on_it() -> None:
    ids = prompt(48, seed=1)
    policy = GemFilterPolicy(layer=2, k=16, pool_kernel=5)
    generate(LazyEngine(LLAMA, policy, num_layers=3), ids, 1)
    selected = policy.selected.tolist()
    assert selected == gemfilter_reference(LLAMA, ids, layer=2, k=16)

    result = run("gemfilter", {"topk": 16, "filter_layer": 2}, ids=ids)
    plain = run("baseline", {}, ids=[ids[p] for p in selected])
    assert_same_run(result, plain)  # the second pass is the plain model on the selected tokens
    # accounting: the filter pass computed the whole prompt at layers 0..2, the second pass 16 tokens
    assert result.computed_per_layer == [48 + 16] * 3 + [16] * 3
    assert result.prefill_rows_per_layer == [48 + 16] * 3 + [16] * 3
    assert result.pct_prompt_computed == pytest.approx(100 * (64 * 3 + 16 * 3) / (48 * 6))
    assert result.kv_tokens_per_layer == plain.kv_tokens_per_layer
    assert result.prompt_tokens == 16 and result.original_prompt_tokens == 48
    assert 0 < result.prompt_rewrite_s < result.ttft_s  # the filter pass counts in TTFT
    assert result.prefill_flops > plain.prefill_flops
    # the default filter layer: 13 of 32 layers scales to floor(0.40625 * depth)
    assert build_method("gemfilter").layer_index(32) == 13
    assert build_method("gemfilter").layer_index(30) == 12


# --- KV selection: StreamingLLM, SnapKV, H2O -------------------------------------------------------
def masked_greedy(model, ids: list[int], new_tokens: int, allowed) -> list[torch.Tensor]:
    """Plain-model greedy decoding where query row q may attend key k (of head h) iff
    allowed(q, k, seq_len) [heads, q, k] says so: the reference for KV selection."""
    seq, out = list(ids), []
    float_mask = model.config._attn_implementation == "eager"
    with torch.no_grad():
        for _ in range(new_tokens):
            mask = allowed(len(seq))[None]
            if float_mask:
                mask = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
            logits = model(torch.tensor([seq]), attention_mask=mask).logits[0, -1].float()
            out.append(logits)
            seq.append(int(logits.argmax()))
    return out


def assert_logits_match(result, reference: list[torch.Tensor], tol: float = 1e-4) -> None:
    assert result.tokens == [int(lg.argmax()) for lg in reference]
    for step, (ours, theirs) in enumerate(zip(result.step_logits, reference)):
        assert (ours - theirs).abs().max().item() <= tol, f"step {step}"


def test_streamingllm_decoding_attends_to_sinks_and_window_only() -> None:
    ids, n_sink, window = prompt(40, seed=2), 4, 8
    method = build_method("streamingllm", n_sink=n_sink, window=window)
    seen = capture_state(method)
    result = method.run(LLAMA, GenerationRequest(ids, 6, keep_logits=True))
    decode_reads = {n for step, _, n in seen["reads"] if step > 0}
    assert decode_reads == {n_sink + window + 1}  # the kept entries plus the new token
    assert result.kv_tokens_per_layer == [n_sink + window] * NUM_LAYERS
    assert result.computed_per_layer == [40] * NUM_LAYERS and result.pct_prompt_computed == 100.0

    heads = LLAMA.config.num_attention_heads

    def allowed(t: int) -> torch.Tensor:
        q, k = torch.arange(t)[:, None], torch.arange(t)[None, :]
        decode = (q >= 40) & ((k < n_sink) | (k >= q - window))
        return ((k <= q) & ((q < 40) | decode))[None].expand(heads, -1, -1)

    assert_logits_match(result, masked_greedy(LLAMA, ids, 6, allowed))


def test_snapkv_selection_and_decoding_match_a_reference_per_head() -> None:
    model = tiny_model("llama", num_layers=1, attn="eager", seed=3)
    ids, budget, window, n = prompt(40, seed=3), 16, 4, 40
    method = build_method("snapkv", budget_tokens=budget, window=window, kernel=3)
    seen = capture_state(method)
    result = method.run(model, GenerationRequest(ids, 5, keep_logits=True))
    with torch.no_grad():
        attn = model(torch.tensor([ids]), output_attentions=True).attentions[0][0]  # [heads, n, n]
    kv_heads = model.config.num_key_value_heads
    votes = attn[:, -window:, : n - window].sum(1).view(kv_heads, -1, n - window).mean(1)
    votes = F.max_pool1d(votes[:, None], 3, stride=1, padding=1)[:, 0]
    chosen = votes.topk(budget - window, dim=-1).indices.sort(-1).values
    expected = torch.cat([chosen, torch.arange(n - window, n).expand(kv_heads, -1)], dim=-1)
    state = seen["state"]
    assert torch.equal(state.kv_reads.positions()[0, :, :budget], expected)
    assert result.kv_tokens_per_layer == [budget + 4]

    group = model.config.num_attention_heads // kv_heads
    keep = torch.zeros(kv_heads, n, dtype=torch.bool)
    keep.scatter_(1, expected, True)
    keep = keep.repeat_interleave(group, dim=0)

    def allowed(t: int) -> torch.Tensor:
        q, k = torch.arange(t)[:, None], torch.arange(t)[None, :]
        prompt_keep = torch.zeros(keep.shape[0], t, dtype=torch.bool)
        prompt_keep[:, :n] = keep
        decode = (q >= n) & (prompt_keep[:, None, :] | (k >= n))
        return (k <= q) & ((q < n) | decode)

    assert_logits_match(result, masked_greedy(model, ids, 5, allowed))


def _h2o_trim(kept: list[int], mass: dict[int, float], heavy: int, recent: int) -> list[int]:
    if len(kept) <= heavy + recent:
        return kept
    old, rec = kept[: len(kept) - recent], kept[len(kept) - recent :]
    return sorted(sorted(old, key=lambda p: -mass[p])[:heavy] + rec)


def h2o_reference(model, ids: list[int], new_tokens: int, heavy: int, recent: int):
    """H2O written directly on a one-layer eager model: per KV head, the attention mass each key got
    from every query so far (summed over the group's query heads); keep the `heavy` largest among all
    but the last `recent` kept keys, and those `recent`. Each decode row sees what was kept then."""
    n, seq, logits = len(ids), list(ids), []
    heads, kv_heads = model.config.num_attention_heads, model.config.num_key_value_heads
    group = heads // kv_heads
    kept = [list(range(n)) for _ in range(kv_heads)]
    mass = [dict.fromkeys(range(n), 0.0) for _ in range(kv_heads)]
    mask = torch.ones(heads, n, n).tril().bool()
    with torch.no_grad():
        for _ in range(new_tokens):
            t = len(seq)
            fmask = torch.zeros(1, heads, t, t).masked_fill(~mask[None], torch.finfo(torch.float32).min)
            out = model(torch.tensor([seq]), attention_mask=fmask, output_attentions=True)
            logits.append(out.logits[0, -1].float())
            rows = slice(0, n) if t == n else slice(t - 1, t)  # the prefill's queries, or the new one
            got = out.attentions[0][0][:, rows].sum(1).view(kv_heads, group, t).sum(1)
            for h in range(kv_heads):
                kept[h] = sorted({*kept[h], t - 1})
                mass[h].setdefault(t - 1, 0.0)
                for p in kept[h]:
                    mass[h][p] += float(got[h, p])
                kept[h] = _h2o_trim(kept[h], mass[h], heavy, recent)
            seq.append(int(logits[-1].argmax()))
            grown = torch.zeros(heads, t + 1, t + 1, dtype=torch.bool)
            grown[:, :t, :t] = mask
            for h in range(heads):
                grown[h, t, kept[h // group]] = True
                grown[h, t, t] = True
            mask = grown
    return logits, kept


def test_h2o_matches_a_direct_implementation() -> None:
    model = tiny_model("llama", num_layers=1, attn="eager", seed=4)
    ids, heavy, recent = prompt(30, seed=4), 6, 4
    method = build_method("h2o", heavy_size=heavy, recent_size=recent)
    seen = capture_state(method)
    result = method.run(model, GenerationRequest(ids, 6, keep_logits=True))
    assert result.kv_tokens_per_layer == [heavy + recent]
    assert {n for step, _, n in seen["reads"] if step > 0} == {heavy + recent + 1}
    final = seen["state"].kv_reads.positions()[0]
    length = seen["state"].length
    assert final[:, -recent:].tolist() == [list(range(length - recent, length))] * final.shape[0]
    ref_logits, ref_kept = h2o_reference(model, ids, 6, heavy, recent)
    assert_logits_match(result, ref_logits)
    assert final.tolist() == ref_kept


def test_h2o_without_heavy_hitters_is_streamingllm_without_sinks() -> None:
    ids = prompt(40, seed=5)
    h2o = run("h2o", {"heavy_size": 0, "recent_size": 10}, ids=ids)
    streaming = run("streamingllm", {"n_sink": 0, "window": 10}, ids=ids)
    assert_same_run(h2o, streaming, tol=1e-5)


def test_h2o_prefill_mass_is_the_attention_column_sum() -> None:
    model = tiny_model("llama", num_layers=3, attn="eager", seed=6)
    ids = prompt(24, seed=6)
    policy = H2OPolicy(build_method("h2o", heavy_ratio=1.0, recent_ratio=1.0))
    generate(LazyEngine(model, policy), ids, 1)
    with torch.no_grad():
        attentions = model(torch.tensor([ids]), output_attentions=True).attentions
    kv_heads = model.config.num_key_value_heads
    expected = torch.stack([a[0].sum(1).view(kv_heads, -1, 24).sum(1) for a in attentions])
    assert torch.allclose(policy.mass, expected, atol=1e-5)


def test_kv_selection_leaves_sliding_window_layers_alone() -> None:
    model = tiny("gemma3")  # five local layers, then one global
    result = run("snapkv", SMALL_BUDGET["snapkv"], model, new_tokens=4)
    assert result.kv_tokens_per_layer == [51] * 5 + [23]


# --- Selective Context ---------------------------------------------------------------------------
def test_selective_context_keeps_the_most_informative_tokens_and_the_tail() -> None:
    ids = prompt(48, seed=7)
    method = build_method("selective_context", keep=0.5, compressor="target", unit="token", keep_last=8)
    method.setup(LLAMA, None)
    kept = method.kept_positions(ids)
    assert len(kept) == 24 and kept[-8:] == list(range(40, 48))
    info = method.token_information(ids, None)
    with torch.no_grad():
        logp = torch.log_softmax(LLAMA(torch.tensor([ids])).logits[0, :-1].float(), -1)
    # without a BOS id the first token scores the maximum; the others their -log p
    assert torch.allclose(info[1:], -logp.gather(1, torch.tensor(ids[1:])[:, None])[:, 0], atol=1e-4)
    dropped = [i for i in range(40) if i not in kept]
    assert min(info[kept[:-8]]) >= max(info[dropped])
    result = method.run(LLAMA, GenerationRequest(ids, 3))
    assert result.prompt_tokens == 24 and result.pct_prompt_computed == pytest.approx(50.0)
    assert result.prompt_rewrite_s > 0


def test_lexical_units_from_token_pieces() -> None:
    pieces = ["Hello", " world", ".", " This", " is", "\n", "ok", "!"]
    assert unit_starts(pieces, "word") == [True, True, False, True, True, True, True, False]
    assert unit_starts(pieces, "sentence") == [True, False, False, True, False, False, True, False]
    assert unit_starts(pieces, "token") == [True] * 8


@pytest.mark.slow
def test_selective_context_on_the_offline_model(smollm2) -> None:
    model, tokenizer = smollm2
    text = (
        "The Amazon is the largest rainforest on Earth. It spans nine countries and holds a tenth of all "
        "known species. Its river carries more water than any other. Question: which river carries the "
        "most water?"
    )
    messages = [{"role": "user", "content": text}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert "".join(token_pieces(tokenizer, ids)) == tokenizer.decode(ids)
    method = build_method("selective_context", keep=0.6, keep_last=12)
    method.setup(model, tokenizer)
    assert method._lm is model  # the offline model is the target: reused, not loaded twice
    kept = method.kept_positions(ids)
    assert len(kept) <= math.ceil(0.6 * len(ids)) and kept[-12:] == list(range(len(ids) - 12, len(ids)))
    special = set(tokenizer.all_special_ids)
    assert all(i in kept for i, t in enumerate(ids) if t in special)
    # scoring through text and the compressor's own tokenizer agrees with scoring the ids directly
    same = method.token_information(ids, None)
    method._same_vocab = False
    crossed = method.token_information(ids, token_pieces(tokenizer, ids))
    assert torch.allclose(same, crossed, atol=1e-3)
    method._same_vocab = True
    result = method.run(model, GenerationRequest(ids, 3))
    assert result.original_prompt_tokens == len(ids) and result.prompt_tokens == len(kept)
    assert result.pruned and result.prompt_rewrite_s > 0 and result.ttft_s > result.prompt_rewrite_s


# --- every rival on the offline model ------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", [r for r in RIVALS if r != "selective_context"])  # it has its own
def test_rival_runs_on_the_offline_model(smollm2, name: str) -> None:
    model, tokenizer = smollm2
    text = "Summarise in one line: the committee met on Tuesday, approved the budget, and adjourned early."
    messages = [{"role": "user", "content": text}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    result = run(name, SMALL_BUDGET[name], model, ids=ids, new_tokens=3, tokenizer=tokenizer)
    assert len(result.tokens) >= 1 and (result.original_prompt_tokens or result.prompt_tokens) == len(ids)
    assert result.ttft_s > 0 and 0 < result.pct_prompt_computed <= 100.0
    layers = model.config.num_hidden_layers
    if build_method(name).saves == "decode":
        assert result.pct_prompt_computed == 100.0 and max(result.kv_tokens_per_layer) < len(ids)
    else:
        assert result.pruned and result.pct_prompt_computed < 100.0
    assert len(result.computed_per_layer) == layers


# --- scoring work counts in FLOPs ----------------------------------------------------------------
def test_scoring_passes_count_in_prefill_flops() -> None:
    """Attention-derived scores are computed beside attention; their q.k work belongs in the FLOPs."""
    from lazybench.engine import full_attention_layers
    from lazybench.engine.adapter import ModelParts
    from lazybench.engine.policy import score_flops
    from lazybench.methods.selective_context import causal_lm_flops

    parts = ModelParts.from_model(LLAMA)
    n, full = 48, baseline("llama").full_prefill_flops
    scored = len(full_attention_layers(parts))
    # H2O accumulates attention mass over every query row and key at every full-attention layer
    h2o = run("h2o", SMALL_BUDGET["h2o"])
    assert h2o.prefill_flops == pytest.approx(full + scored * score_flops(n, n, parts))
    # SnapKV scores the prefix with its observation window's rows
    snap = run("snapkv", SMALL_BUDGET["snapkv"])
    assert snap.prefill_flops == pytest.approx(full + scored * score_flops(8, n, parts))
    # LazyLLM: the last query's row at each of its three score layers
    keep_all = run("lazyllm", {"schedule": {"boundaries": [0.3, 0.6, 0.9], "keep": [1.0, 1.0, 1.0]}})
    assert keep_all.prefill_flops == pytest.approx(full + 3 * score_flops(1, n, parts))
    # Selective Context: the compressor's forward (here the target itself, logits at every position)
    sc = run("selective_context", SMALL_BUDGET["selective_context"])
    assert sc.prompt_rewrite_flops == pytest.approx(causal_lm_flops(LLAMA, n))
    target_part = LazyEngine(LLAMA, TokenPolicy()).full_prefill_flops(sc.prompt_tokens)
    assert sc.prefill_flops == pytest.approx(sc.prompt_rewrite_flops + target_part)
    assert sc.prefill_flop_fraction > 1.0  # a full forward to score, then the shortened prompt

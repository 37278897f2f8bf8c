"""mechlearn.interp.patching against TransformerLens on the same weights and against closed forms.

References, all in float64:

* activation patching: TransformerLens's ``transformer_lens.patching`` helpers
  (``get_act_patch_resid_pre``, ``..._attn_head_out_all_pos``, ``..._by_pos``...) on the bridge of
  the same weights. They run the corrupted tokens with clean activations patched in (denoising);
  the noising direction is the same helper called with the clean tokens and the corrupted cache.
  They fill a ``torch.zeros`` of the *default* dtype, so the default is float64 while they run.
* attribution patching: TransformerLens's ``tools.analysis.attribution_patching.attribution_patch``
  (per-example node scores, averaged), which equals ours minus the base metric when our metric is
  the batch mean of its per-example metric; and activation patching itself where the path from the
  site to a linear metric is linear (a model whose final LayerNorm is removed).
* path patching: closed forms written out here from the weights: with every other head (and, with
  ``freeze_mlps``, every MLP) frozen, a sender's effect on the final residual stream is its own
  change ``Δz W_O`` added to it; and a receiver's recomputed input sees the base residual stream
  plus the senders' ``Δz W_O`` (TransformerLens's ``get_act_patch_direct_path`` semantics, which
  the bridge of our model cannot run: it has no pre-Q/K/V fork).
* patching a run into itself gives the unpatched metric everywhere.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from conftest import unchecked
from interp_models import random_gpt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechlearn.gpt import GPT
from mechlearn.gpt.interop import to_transformer_lens
from mechlearn.interp.core import hook_name, run_with_cache, run_with_hooks, weights
from mechlearn.interp.patching import (
    activation_patch_heads, activation_patch_resid, attribution_patch_heads, attribution_patch_resid,
    attribution_patch, normalise_patching, patch_sites, path_patch, path_patch_heads, path_patch_senders,
    patching_baselines,
)
from mechlearn.testing import EXACT, FLOAT64, assert_close

tl_patching = pytest.importorskip("transformer_lens.patching")

N_LAYERS, N_HEADS, D_VOCAB, POS = 3, 2, 23, 7
CORRECT, WRONG = 3, 5


def small(attn_only: bool, seed: int = 0) -> GPT:
    return random_gpt(seed=seed, attn_only=attn_only, weight_std=0.4, bias_std=0.1, d_vocab=D_VOCAB, n_ctx=10,
                      d_model=16, n_layers=N_LAYERS, n_heads=N_HEADS)


def metric(logits):
    """A logit difference at the last position, averaged over the batch (linear in the logits)."""
    return (logits[:, -1, CORRECT] - logits[:, -1, WRONG]).mean()


def per_example_metric(logits):
    return logits[:, -1, CORRECT] - logits[:, -1, WRONG]


@pytest.fixture(scope="module")
def prompts():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, D_VOCAB, (3, POS), generator=g), torch.randint(0, D_VOCAB, (3, POS), generator=g)


@pytest.fixture(scope="module")
def mlp_models():
    model = small(attn_only=False)
    return model, to_transformer_lens(model)


@pytest.fixture(scope="module")
def attn_only_model():
    return small(attn_only=True, seed=2)


@contextlib.contextmanager
def float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def transformer_lens_results(bridge, clean, corrupted):
    """TransformerLens's helpers, denoising (corrupted run, clean cache) and noising (the reverse)."""
    P = tl_patching
    with float64_default():
        _, clean_cache = bridge.run_with_cache(clean)
        _, corrupted_cache = bridge.run_with_cache(corrupted)
        resid_post = lambda toks, cache: P.generic_activation_patch(  # noqa: E731
            bridge, toks, cache, metric, P.layer_pos_patch_setter, "resid_post", ("layer", "pos"))
        return {
            ("resid", "resid_pre", "denoising"): P.get_act_patch_resid_pre(bridge, corrupted, clean_cache, metric),
            ("resid", "resid_mid", "denoising"): P.get_act_patch_resid_mid(bridge, corrupted, clean_cache, metric),
            ("resid", "attn_out", "denoising"): P.get_act_patch_attn_out(bridge, corrupted, clean_cache, metric),
            ("resid", "mlp_out", "noising"): P.get_act_patch_mlp_out(bridge, clean, corrupted_cache, metric),
            ("resid", "resid_post", "noising"): resid_post(clean, corrupted_cache),
            ("heads", "z", "denoising"): P.get_act_patch_attn_head_out_all_pos(bridge, corrupted, clean_cache, metric),
            ("heads", "z", "noising"): P.get_act_patch_attn_head_out_all_pos(bridge, clean, corrupted_cache, metric),
            ("heads", "q", "denoising"): P.get_act_patch_attn_head_q_all_pos(bridge, corrupted, clean_cache, metric),
            ("heads", "k", "noising"): P.get_act_patch_attn_head_k_all_pos(bridge, clean, corrupted_cache, metric),
            ("heads_pos", "z", "denoising"): P.get_act_patch_attn_head_out_by_pos(bridge, corrupted, clean_cache, metric),
            ("heads_pos", "v", "noising"): P.get_act_patch_attn_head_v_by_pos(bridge, clean, corrupted_cache, metric),
        }


def test_activation_patching_equals_transformer_lens_helpers(mlp_models, prompts):
    model, bridge = mlp_models
    clean, corrupted = prompts
    reference = transformer_lens_results(bridge, clean, corrupted)
    for target in (model, bridge):
        for (what, kind, direction), expected in reference.items():
            if kind == "resid_mid" and target is model:
                continue  # below: the bridge's hook_resid_mid is not the residual stream
            if what == "resid":
                ours = activation_patch_resid(target, clean, corrupted, metric, kind, direction=direction,
                                              sites_per_batch=5)
            else:
                ours = activation_patch_heads(target, clean, corrupted, metric, kind=kind, direction=direction,
                                              by_pos=what == "heads_pos")
            assert expected.dtype == torch.float64
            assert_close(ours, expected, FLOAT64, name=f"{type(target).__name__} {what} {kind} {direction}")
    # TransformerLens 4.3's bridge aliases hook_resid_mid to ln2.hook_in: patching it changes the
    # MLP's input only, while the skip connection carries the unpatched stream. Our GPT patches the
    # stream itself (as HookedTransformer did), so the two differ there.
    ours_mid = activation_patch_resid(model, clean, corrupted, metric, "resid_mid")
    assert (ours_mid - reference[("resid", "resid_mid", "denoising")]).abs().max() > 0.1
    # The check can fail: the two directions give different tables.
    noising = activation_patch_heads(model, clean, corrupted, metric, direction="noising")
    assert (noising - reference[("heads", "z", "denoising")]).abs().max() > 0.1


def test_patching_a_run_into_itself_gives_its_metric(mlp_models, prompts):
    model, _ = mlp_models
    clean, corrupted = prompts
    clean_value, corrupted_value = patching_baselines(model, clean, corrupted, metric)
    assert abs(clean_value - corrupted_value) > 0.1, "the prompts should differ in the metric"
    same = [
        activation_patch_resid(model, clean, clean, metric),
        activation_patch_heads(model, clean, clean, metric, by_pos=True),
        path_patch_heads(model, clean, clean, metric),
        path_patch_heads(model, clean, clean, metric, receivers=[(2, 0), (2, 1)], receiver_input=["q", "k", "v"]),
    ]
    for values in same:
        assert_close(values, torch.full_like(values, clean_value.item()), FLOAT64, name="clean into clean")
    assert_close(attribution_patch_heads(model, clean, clean, metric), torch.full((N_LAYERS, N_HEADS), clean_value.item(),
                 dtype=torch.float64), EXACT, name="attribution, clean into clean")
    # Patching the final residual stream at the last position (all the metric reads) restores the
    # other run's metric exactly, in both directions; the first position alone does not.
    for direction, target in (("denoising", clean_value), ("noising", corrupted_value)):
        final = activation_patch_resid(model, clean, corrupted, metric, "resid_post", direction=direction)
        assert_close(final[-1, -1], target, FLOAT64, name=f"final resid_post, last position, {direction}")
        assert (final[-1, 0] - target).abs() > 1e-3


def test_patch_sites_mixes_sites_of_any_kind(mlp_models, prompts):
    model, _ = mlp_models
    clean, corrupted = prompts
    names = [hook_name("resid_pre", 1), hook_name("z", 2), hook_name("mlp_out", 0)]
    _, clean_cache = run_with_cache(model, clean, names)
    sites = [(names[0], (3,)), (names[1], (slice(None), 1)), (names[1], (4, 0)), (names[2], (6,))]
    values = patch_sites(model, corrupted, clean_cache, metric, sites, sites_per_batch=3)
    expected = torch.stack([
        activation_patch_resid(model, clean, corrupted, metric)[1, 3],
        activation_patch_heads(model, clean, corrupted, metric)[2, 1],
        activation_patch_heads(model, clean, corrupted, metric, by_pos=True)[2, 4, 0],
        activation_patch_resid(model, clean, corrupted, metric, "mlp_out")[0, 6],
    ])
    assert_close(values, expected, FLOAT64, name="mixed sites = the sweeps' entries")
    with pytest.raises(KeyError, match="source_cache has no activation"):
        patch_sites(model, corrupted, clean_cache, metric, [(hook_name("z", 0), (0, 0))])
    with pytest.raises(KeyError, match="no hook point"):
        patch_sites(model, corrupted, clean_cache, metric, [("blocks.0.hook_zz", (0,))])


def test_normalise_patching_puts_corrupted_at_0_and_clean_at_1(mlp_models, prompts):
    model, _ = mlp_models
    clean, corrupted = prompts
    clean_value, corrupted_value = patching_baselines(model, clean, corrupted, metric)
    out = normalise_patching(torch.stack([clean_value, corrupted_value]), clean_value, corrupted_value.item())
    assert_close(out, torch.tensor([1.0, 0.0], dtype=torch.float64), FLOAT64, name="normalised baselines")
    with pytest.raises(ValueError, match="equal"):
        normalise_patching(out, 1.0, 1)


def final_logits_with_head_changed(model, base, source, head):
    """Logits of ``base`` with every head frozen and ``head``'s output taken from ``source`` (by hand)."""
    layer, h = head
    w = weights(model)
    _, base_cache = run_with_cache(model, base)
    _, source_cache = run_with_cache(model, source, hook_name("z", layer))
    resid = base_cache[hook_name("resid_post", N_LAYERS - 1)]
    resid = resid + (source_cache["z", layer][:, :, h] - base_cache["z", layer][:, :, h]) @ w.W_O[layer, h]
    x = resid - resid.mean(-1, keepdim=True)
    x = x / (x.pow(2).mean(-1, keepdim=True) + model.cfg.layer_norm_eps).sqrt()
    return (x * model.ln_final.w + model.ln_final.b) @ w.W_U + w.b_U


@pytest.mark.parametrize("direction", ["noising", "denoising"])
def test_path_patching_to_the_logits_is_the_senders_direct_effect(mlp_models, prompts, direction):
    model, bridge = mlp_models
    clean, corrupted = prompts
    base, source = (clean, corrupted) if direction == "noising" else (corrupted, clean)
    # MLPs are not frozen (as in ARENA and Wang et al.), so here a sender's effect also travels through
    # every later MLP: the direct effect by hand is the answer only without MLPs (next test).
    ours = path_patch_heads(model, clean, corrupted, metric, direction=direction, sites_per_batch=4)
    direct = metric(final_logits_with_head_changed(model, base, source, (2, 0)))
    assert (ours[2, 0] - direct).abs() > 1e-4, "the last MLP reads the sender too"
    assert_close(path_patch_heads(bridge, clean, corrupted, metric, direction=direction), ours, FLOAT64,
                 name="bridge = ours")
    # Nothing reads a last-layer head but the logits: path patching = activation patching there ...
    activation = activation_patch_heads(model, clean, corrupted, metric, direction=direction)
    assert_close(ours[-1], activation[-1], FLOAT64, name="last layer: path = activation patching")
    # ... and not before it, where later heads read the sender too.
    assert (ours[0] - activation[0]).abs().max() > 1e-3
    one = path_patch(model, clean, corrupted, metric, senders=(1, 1), direction=direction)
    assert_close(one, ours[1, 1], FLOAT64, name="path_patch = its row of the sweep")
    # With the MLPs frozen too, only the direct path is left: the closed form for every sender.
    expected = torch.stack([metric(final_logits_with_head_changed(model, base, source, (layer, h)))
                            for layer in range(N_LAYERS) for h in range(N_HEADS)]).view(N_LAYERS, N_HEADS)
    direct_only = path_patch_heads(model, clean, corrupted, metric, direction=direction, freeze_mlps=True)
    assert_close(direct_only, expected, FLOAT64, name="senders -> logits, MLPs frozen")


def test_path_patching_to_the_logits_in_an_attention_only_model(attn_only_model, prompts):
    model = attn_only_model
    clean, corrupted = prompts
    expected = torch.stack([metric(final_logits_with_head_changed(model, clean, corrupted, (layer, h)))
                            for layer in range(N_LAYERS) for h in range(N_HEADS)]).view(N_LAYERS, N_HEADS)
    assert_close(path_patch_heads(model, clean, corrupted, metric), expected, FLOAT64, name="every sender -> logits")
    # Patching every head of the last layer together is activation patching of the whole layer's z.
    both = path_patch(model, clean, corrupted, metric, senders=[(2, 0), (2, 1)])
    _, corrupted_cache = run_with_cache(model, corrupted, hook_name("z", 2))
    layer_patched = metric(run_with_hooks(model, clean, [(hook_name("z", 2), lambda z, hook: corrupted_cache["z", 2])]))
    assert_close(both, layer_patched, FLOAT64, name="all last-layer heads as senders")


def receiver_by_hand(model, base, source, senders, receivers, inputs):
    """The metric with ``receivers``' inputs recomputed from base resid + the senders' ``Δz W_O`` (attention only)."""
    w = weights(model)
    _, base_cache = run_with_cache(model, base)
    _, source_cache = run_with_cache(model, source)
    layers = sorted({layer for layer, _ in receivers})
    recomputed = {}
    for layer in layers:
        delta = sum((source_cache["z", sl][:, :, sh] - base_cache["z", sl][:, :, sh]) @ w.W_O[sl, sh]
                    for sl, sh in senders if sl < layer)
        wanted = [hook_name(i, layer) for i in inputs]
        hooks = [(hook_name("resid_pre", layer), lambda x, hook, d=delta: x + d)]
        hooks += [(name, lambda a, hook, n=name: recomputed.__setitem__(n, a.clone())) for name in wanted]
        run_with_hooks(model, base, hooks)

    def patch(act, hook, name, layer):
        act = act.clone()
        heads = [h for l, h in receivers if l == layer]
        act[:, :, heads] = recomputed[name][:, :, heads]
        return act

    hooks = [(hook_name(i, layer), lambda a, hook, n=hook_name(i, layer), layer=layer: patch(a, hook, n, layer))
             for layer in layers for i in inputs]
    return metric(run_with_hooks(model, base, hooks))


@pytest.mark.parametrize("senders,receivers,inputs,direction", [
    ([(0, 1)], [(1, 0)], ["q"], "noising"),
    ([(0, 0)], [(2, 1)], ["k"], "denoising"),
    ([(0, 1), (1, 0)], [(1, 1), (2, 0)], ["v"], "noising"),
    ([(1, 1)], [(2, 0), (2, 1)], ["q", "k", "v"], "denoising"),
])
def test_path_patching_to_receivers_is_the_direct_path(attn_only_model, mlp_models, prompts, senders, receivers,
                                                       inputs, direction):
    clean, corrupted = prompts
    base, source = (clean, corrupted) if direction == "noising" else (corrupted, clean)
    model = attn_only_model
    expected = receiver_by_hand(model, base, source, senders, receivers, inputs)
    ours = path_patch(model, clean, corrupted, metric, senders, receivers, inputs, direction=direction)
    assert_close(ours, expected, FLOAT64, name=f"{senders} -> {receivers} {inputs}")
    assert (ours - metric(model(base))).abs() > 1e-4, "the path should matter in this random model"
    # With MLPs the direct path is what freeze_mlps=True measures; the default also counts the MLPs.
    model = mlp_models[0]
    expected = receiver_by_hand(model, base, source, senders, receivers, inputs)
    ours = path_patch(model, clean, corrupted, metric, senders, receivers, inputs, direction=direction,
                      freeze_mlps=True)
    assert_close(ours, expected, FLOAT64, name=f"{senders} -> {receivers} {inputs}, MLPs frozen")
    free = path_patch(model, clean, corrupted, metric, senders, receivers, inputs, direction=direction)
    assert (free - ours).abs() > 1e-6, "the MLPs carry part of the senders' change"


def test_path_patch_heads_sweep_matches_single_calls_and_the_bridge(mlp_models, prompts):
    model, bridge = mlp_models
    clean, corrupted = prompts
    receivers = [(2, 0)]
    sweep = path_patch_heads(model, clean, corrupted, metric, receivers, "q", sites_per_batch=3)
    singles = torch.stack([path_patch(model, clean, corrupted, metric, [(layer, h)], receivers, "q")
                           for layer in range(N_LAYERS) for h in range(N_HEADS)]).view(N_LAYERS, N_HEADS)
    assert_close(sweep, singles, FLOAT64, name="sweep = one call per sender")
    assert_close(sweep[2], metric(model(clean)).expand(N_HEADS), FLOAT64, name="senders at the receivers' layer")
    assert_close(path_patch_heads(bridge, clean, corrupted, metric, receivers, "q"), sweep, FLOAT64, name="bridge")
    sets = [[(0, 0)], [(0, 1), (1, 0)], [(1, 1), (0, 0), (0, 1)]]
    together = path_patch_senders(model, clean, corrupted, metric, sets, receivers, ["k", "v"], sites_per_batch=2)
    one_by_one = torch.stack([path_patch(model, clean, corrupted, metric, s, receivers, ["k", "v"]) for s in sets])
    assert_close(together, one_by_one, FLOAT64, name="sets of senders, batched = one call per set")
    with pytest.raises(ValueError, match="sender_sets"):
        path_patch_senders(model, clean, corrupted, metric, [], receivers)


def test_attribution_patching_equals_transformer_lens(mlp_models, prompts):
    from transformer_lens.tools.analysis.attribution_patching import attribution_patch as tl_attribution_patch

    model, bridge = mlp_models
    clean, corrupted = prompts
    with float64_default():
        nodes = tl_attribution_patch(bridge, clean, corrupted, metric).node_scores  # per example, averaged
    corrupted_value = metric(model(corrupted)).detach()
    heads = {(n.layer, n.position, n.head): s for n, s in nodes.items() if n.kind == "attn_head_out"}
    mlps = {(n.layer, n.position): s for n, s in nodes.items() if n.kind == "mlp_out"}
    expected_heads = torch.tensor([[[heads[l, p, h] for h in range(N_HEADS)] for p in range(POS)] for l in range(N_LAYERS)],
                                  dtype=torch.float64)
    expected_mlp = torch.tensor([[mlps[l, p] for p in range(POS)] for l in range(N_LAYERS)], dtype=torch.float64)
    for target in (model, bridge):
        by_pos = attribution_patch_heads(target, clean, corrupted, metric, by_pos=True)
        assert_close(by_pos - corrupted_value, expected_heads, FLOAT64, name="head attribution by position")
        assert_close(attribution_patch_heads(target, clean, corrupted, metric) - corrupted_value,
                     expected_heads.sum(1), FLOAT64, name="head attribution, all positions")
        mlp = attribution_patch_resid(target, clean, corrupted, metric, "mlp_out")
        assert_close(mlp - corrupted_value, expected_mlp, FLOAT64, name="mlp_out attribution")
    value, terms = attribution_patch(model, clean, corrupted, metric, [hook_name("z", 1)])
    assert_close(value, corrupted_value, FLOAT64, name="base metric")
    assert_close(terms[hook_name("z", 1)].sum(dim=(0, 3)), expected_heads[1], FLOAT64, name="raw terms, summed")
    assert all(p.grad is None for p in model.parameters()), "attribution should leave no parameter gradients"
    model.requires_grad_(False)  # frozen weights: the gradient still reaches the activations
    try:
        frozen = attribution_patch_heads(model, clean, corrupted, metric, by_pos=True)
    finally:
        model.requires_grad_(True)
    assert_close(frozen - corrupted_value, expected_heads, FLOAT64, name="frozen weights")


def test_attribution_equals_activation_patching_on_a_linear_path(attn_only_model, prompts):
    clean, corrupted = prompts
    linear = small(attn_only=True, seed=2)
    linear.ln_final = torch.nn.Identity()  # logits = resid_final W_U + b_U: linear after the last attention
    for model, tol_ok in ((linear, True), (attn_only_model, False)):
        for direction in ("denoising", "noising"):
            act = activation_patch_heads(model, clean, corrupted, metric, by_pos=True, direction=direction)
            att = attribution_patch_heads(model, clean, corrupted, metric, by_pos=True, direction=direction)
            resid_act = activation_patch_resid(model, clean, corrupted, metric, "resid_post", direction=direction)
            resid_att = attribution_patch_resid(model, clean, corrupted, metric, "resid_post", direction=direction)
            if tol_ok:  # the last layer's heads and final residual stream reach the linear metric linearly
                assert_close(att[-1], act[-1], FLOAT64, name=f"last-layer heads, {direction}")
                assert_close(resid_att[-1], resid_act[-1], FLOAT64, name=f"final resid_post, {direction}")
                assert (att[0] - act[0]).abs().max() > 1e-4, "attention in between is not linear"
            else:  # with the final LayerNorm's nonlinearity the approximation is only approximate
                assert (att[-1] - act[-1]).abs().max() > 1e-4


# -- bad input -----------------------------------------------------------------------------------


def test_bad_input_errors_name_what_was_expected(attn_only_model, prompts):
    model = attn_only_model
    clean, corrupted = prompts
    with pytest.raises(ValueError, match="same shape"):
        unchecked(activation_patch_resid)(model, clean, corrupted[:, :-1], metric)
    with pytest.raises(ValueError, match="scalar"):
        activation_patch_heads(model, clean, corrupted, per_example_metric)
    with pytest.raises(ValueError, match="scalar"):
        attribution_patch_heads(model, clean, corrupted, per_example_metric)
    with pytest.raises(TypeError, match="callable"):
        unchecked(path_patch_heads)(model, clean, corrupted, "logit diff")
    with pytest.raises(KeyError, match="no hook point"):
        activation_patch_resid(model, clean, corrupted, metric, "mlp_out")  # attention-only model
    with pytest.raises(ValueError, match="kind should be one of"):
        activation_patch_resid(model, clean, corrupted, metric, "z")
    with pytest.raises(ValueError, match="kind should be one of"):
        attribution_patch_heads(model, clean, corrupted, metric, kind="pattern")
    with pytest.raises(ValueError, match="direction should be"):
        unchecked(activation_patch_heads)(model, clean, corrupted, metric, direction="forwards")
    with pytest.raises(ValueError, match=r"head should be an int in \[0, 2\)"):
        path_patch(model, clean, corrupted, metric, senders=[(0, 2)])
    with pytest.raises(ValueError, match=r"layer should be an int in \[0, 3\)"):
        path_patch_heads(model, clean, corrupted, metric, receivers=[(3, 0)])
    with pytest.raises(ValueError, match="receiver_input"):
        path_patch(model, clean, corrupted, metric, senders=[(0, 0)], receivers=[(1, 0)], receiver_input="z")
    with pytest.raises(ValueError, match="at least one"):
        path_patch(model, clean, corrupted, metric, senders=[])
    with pytest.raises(ValueError, match="sites_per_batch"):
        activation_patch_resid(model, clean, corrupted, metric, sites_per_batch=0)


FUZZ = settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
FUNCTIONS = [activation_patch_resid, activation_patch_heads, path_patch_heads, attribution_patch_resid,
             attribution_patch_heads]


@FUZZ
@given(fn=st.sampled_from(FUNCTIONS), batch=st.integers(1, 3), pos=st.integers(1, 6), extra=st.integers(1, 3),
       axis=st.sampled_from([0, 1]))
def test_fuzz_prompts_of_different_shapes_are_refused(attn_only_model, fn, batch, pos, extra, axis):
    shape = [batch, pos]
    clean = torch.zeros(*shape, dtype=torch.long)
    shape[axis] += extra
    with pytest.raises(ValueError, match="same shape"):
        unchecked(fn)(attn_only_model, clean, torch.zeros(*shape, dtype=torch.long), metric)


@FUZZ
@given(fn=st.sampled_from(FUNCTIONS), shape=st.lists(st.integers(0, 3), min_size=1, max_size=3).filter(
    lambda s: torch.Size(s).numel() != 1))
def test_fuzz_metrics_that_are_not_scalars_are_refused(attn_only_model, fn, shape):
    tokens = torch.zeros(2, 4, dtype=torch.long)
    bad_metric = lambda logits: logits.sum() * torch.ones(shape, dtype=logits.dtype)  # noqa: E731
    with pytest.raises(ValueError, match="should return a scalar"):
        unchecked(fn)(attn_only_model, tokens, tokens + 1, bad_metric)


@FUZZ
@given(kind=st.text(min_size=0, max_size=8).filter(lambda k: k not in ("resid_pre", "resid_post", "attn_out")),
       fn=st.sampled_from([activation_patch_resid, attribution_patch_resid]))
def test_fuzz_unknown_activation_kinds_are_refused(attn_only_model, kind, fn):
    tokens = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises((ValueError, KeyError), match="should be one of|no hook point"):
        unchecked(fn)(attn_only_model, tokens, tokens, metric, kind)


@FUZZ
@given(layer=st.integers(-3, 6), head=st.integers(-3, 5), as_receiver=st.booleans())
def test_fuzz_heads_out_of_range_are_refused(attn_only_model, layer, head, as_receiver):
    if 0 <= layer < N_LAYERS and 0 <= head < N_HEADS:
        return
    tokens = torch.zeros(1, 3, dtype=torch.long)
    heads = [(layer, head)]
    with pytest.raises(ValueError, match="should be an int in"):
        if as_receiver:
            unchecked(path_patch_heads)(attn_only_model, tokens, tokens, metric, heads)
        else:
            unchecked(path_patch)(attn_only_model, tokens, tokens, metric, heads, [(2, 0)])

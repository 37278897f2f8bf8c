"""Activation patching, path patching and attribution patching, each driven by a metric on the logits.

Three causal tools from ARENA 1.4.1 ("Indirect object identification"), all taking a *clean* prompt
(the model gets the task right), a *corrupted* prompt of the same shape (it does not: in IOI the
names are swapped for three unrelated ones) and a ``metric(logits) -> scalar``:

* **Activation patching** (Meng et al. 2022's causal tracing; Heimersheim & Janiak 2023, Zhang &
  Nanda 2023 on how to use it): run one prompt, overwrite one activation with its value from the
  other prompt, and read the metric. Where a single patch moves the metric most, the information
  that distinguishes the prompts is carried. `activation_patch_resid` sweeps the residual stream
  (or a block's attention output) over layers and positions; `activation_patch_heads` sweeps the
  heads' outputs ``hook_z`` (or their q, k, v), over all positions at once or position by position.
* **Path patching** (Wang et al. 2022, appendix B; ARENA 1.4.1): activation patching asks "does
  this head matter?"; path patching asks "does this head matter *through this route*?". Patch the
  sender heads, freeze every other head to its unpatched value so that the change can only travel
  along the direct path (and through MLPs, which are not frozen, as in the paper; ``freeze_mlps``
  freezes them too), recompute the receivers' inputs, and let only the receivers see them.
  `path_patch` does one set of senders, `path_patch_senders` several at once, and
  `path_patch_heads` sweeps every head as a single sender.
* **Attribution patching** (Nanda 2023, "Attribution patching: activation patching at industrial
  scale"): the first-order Taylor expansion of activation patching. With ``a`` the activation of the
  run being patched and ``a'`` the value patched in, ``metric(a') ≈ metric(a) + (a' - a) · ∂metric/∂a``,
  and one backward pass gives ``∂metric/∂a`` at *every* site at once (`attribution_patch`, summed
  by `attribution_patch_resid` and `attribution_patch_heads`). Exact when the path from the site to
  the metric is linear; elsewhere a map of where to look, not a measurement.

**Direction.** ``direction="denoising"`` runs the *corrupted* prompt and patches in *clean*
activations: a site whose patch restores the clean metric is *sufficient* to carry the answer. This
is what TransformerLens's ``transformer_lens.patching`` helpers and ARENA's activation-patching
exercises do, and the default of the activation and attribution patching functions here.
``direction="noising"`` runs the *clean* prompt and patches in *corrupted* activations: a site whose
patch destroys the clean metric is *necessary*. ARENA's (and Wang et al.'s) path patching is
noising, and so is the default of `path_patch` and `path_patch_heads`. Every function returns the
raw metric of the patched runs; `patching_baselines` gives the unpatched clean and corrupted values
and `normalise_patching` rescales to ARENA's ``ioi_metric`` scale (0 = corrupted, 1 = clean).

**Efficiency.** Each function caches the run it patches from once, then runs many patch sites in
one forward pass by stacking copies of the prompt along the batch axis (copy ``i`` carries patch
``i``), ``sites_per_batch`` copies at a time; the metric is called on each copy's logits
(`patch_sites`, the activation-patching engine, also usable on its own for any list of sites).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn.interp.core import (
    Metric, check_head, check_hook_name, check_prompt_pair, check_scalar_metric, check_tokens, hook_name,
    model_spec, run_with_cache, run_with_hooks,
)

__all__ = [
    "Direction", "RESID_KINDS", "HEAD_KINDS", "patching_baselines", "normalise_patching", "patch_sites",
    "activation_patch_resid", "activation_patch_heads", "path_patch", "path_patch_senders", "path_patch_heads",
    "attribution_patch", "attribution_patch_resid", "attribution_patch_heads",
]

Direction = Literal["denoising", "noising"]
"""``"denoising"``: run corrupted, patch in clean (TransformerLens, ARENA's activation patching).
``"noising"``: run clean, patch in corrupted (ARENA's path patching)."""

RESID_KINDS = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")
"""Activations of shape ``(batch, pos, d_model)`` that `activation_patch_resid` can sweep."""

HEAD_KINDS = ("z", "q", "k", "v")
"""Per-head activations of shape ``(batch, pos, head_index, d_head)`` that the head sweeps can patch."""

Head = tuple[int, int]
_SITES_ROWS = 8192  # default: about this many (copy x batch x pos) token rows per stacked forward


# -- shared plumbing -----------------------------------------------------------------------------


def _runs(model: Any, clean: Any, corrupted: Any, direction: str) -> tuple[Tensor, Tensor]:
    """``(base, source)``: the prompt that is run and the prompt whose activations are patched in."""
    clean, corrupted = check_prompt_pair(model, clean, corrupted)
    if direction == "denoising":
        return corrupted, clean
    if direction == "noising":
        return clean, corrupted
    raise ValueError(f"direction should be 'denoising' (run corrupted, patch in clean) or 'noising' "
                     f"(run clean, patch in corrupted), got {direction!r}")


def _checked_metric(model: Any, tokens: Tensor, metric: Any) -> Tensor:
    """The metric on the unpatched run of ``tokens``, checked to be a scalar."""
    if not callable(metric):
        raise TypeError(f"metric should be callable as metric(logits) -> scalar tensor, got {type(metric).__name__}")
    with torch.no_grad():
        return check_scalar_metric(metric(run_with_hooks(model, tokens, [])), "metric").detach()


def _kind_name(model: Any, kind: str, allowed: tuple[str, ...], layer: int = 0) -> str:
    if kind not in allowed:
        raise ValueError(f"kind should be one of {list(allowed)}, got {kind!r}")
    return check_hook_name(model, hook_name(kind, layer))


def _sites_per_batch(sites_per_batch: int | None, tokens: Tensor) -> int:
    if sites_per_batch is None:
        return max(1, _SITES_ROWS // tokens.numel())
    if isinstance(sites_per_batch, bool) or not isinstance(sites_per_batch, int) or sites_per_batch < 1:
        raise ValueError(f"sites_per_batch should be a positive int, got {sites_per_batch!r}")
    return sites_per_batch


def _stacked_metrics(
    model: Any, tokens: Tensor, metric: Any, hooks: list[tuple[str, Callable]], n_copies: int
) -> list[Tensor]:
    """Run ``n_copies`` stacked copies of ``tokens`` with ``hooks``; the metric of each copy."""
    batch = tokens.shape[0]
    logits = run_with_hooks(model, tokens.repeat(n_copies, 1), hooks)
    return [check_scalar_metric(metric(logits[i * batch:(i + 1) * batch]), "metric").detach()
            for i in range(n_copies)]


def patch_sites(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    source_cache: dict[str, Tensor],
    metric: Metric,
    sites: Sequence[tuple[str, tuple]],
    *,
    sites_per_batch: int | None = None,
) -> Float[Tensor, " n_sites"]:
    """The metric of ``tokens`` with each site patched from ``source_cache``: the engine of every sweep here.

    A site is ``(hook name, index)``, where ``index`` indexes the activation after its batch axis:
    ``(pos,)`` for a position of the residual stream, ``(slice(None), head)`` for one head at every
    position, ``(pos, head)`` for one head at one position. Entry ``i`` is the metric of a run of
    ``tokens`` in which site ``i`` alone holds its value from ``source_cache`` (for every prompt
    of the batch). ``sites_per_batch`` copies of the batch run in one forward pass, stacked along
    the batch axis, copy ``c`` carrying its own patch; the metric is called on each copy's logits.

    Raises:
        KeyError: a site names a hook the model does not have, or one missing from ``source_cache``.
        ValueError: a non-scalar metric, or ``sites_per_batch`` < 1.
    """
    tokens = check_tokens(model, tokens)
    for name in dict.fromkeys(name for name, _ in sites):  # each hook once, in order
        check_hook_name(model, name)
        if name not in source_cache:
            raise KeyError(f"source_cache has no activation {name!r}; cache it with run_with_cache first")
    batch, values = tokens.shape[0], []
    per_batch = _sites_per_batch(sites_per_batch, tokens)
    for start in range(0, len(sites), per_batch):
        chunk = sites[start:start + per_batch]
        by_name: dict[str, list[tuple[int, tuple]]] = {}
        for copy, (name, index) in enumerate(chunk):
            by_name.setdefault(name, []).append((copy, tuple(index)))

        def patch(act: Tensor, hook: Any, name: str) -> Tensor:
            act = act.clone()
            source = source_cache[name]
            for copy, index in by_name[name]:
                rows = slice(copy * batch, (copy + 1) * batch)  # copy `copy` of the batch
                act[(rows, *index)] = source[(slice(None), *index)]
            return act

        hooks = [(name, lambda act, hook, name=name: patch(act, hook, name)) for name in by_name]
        with torch.no_grad():
            values += _stacked_metrics(model, tokens, metric, hooks, len(chunk))
    return torch.stack(values)


def patching_baselines(
    model: Any, clean_tokens: Int[Tensor, "batch pos"], corrupted_tokens: Int[Tensor, "batch pos"], metric: Metric
) -> tuple[Float[Tensor, ""], Float[Tensor, ""]]:
    """``(clean value, corrupted value)``: the metric on the two unpatched runs.

    Raises:
        ValueError: the prompts differ in shape, or the metric does not return a scalar.
    """
    clean, corrupted = check_prompt_pair(model, clean_tokens, corrupted_tokens)
    return _checked_metric(model, clean, metric), _checked_metric(model, corrupted, metric)


def normalise_patching(
    values: Float[Tensor, "*shape"], clean_value: Tensor | float | int, corrupted_value: Tensor | float | int
) -> Float[Tensor, "*shape"]:
    """Rescale patched metric values so that 0 is the corrupted run and 1 the clean run.

    ``(values - corrupted) / (clean - corrupted)``, ARENA's ``ioi_metric``. With denoising a 1
    means the patch restores the clean behaviour; with noising a 0 means it destroys it.

    Raises:
        ValueError: the clean and corrupted values are equal (there is no scale to normalise by).
    """
    clean, corrupted = float(clean_value), float(corrupted_value)
    if clean == corrupted:
        raise ValueError(f"the clean and corrupted metric values are equal ({clean}): nothing to normalise by")
    return (values - corrupted) / (clean - corrupted)


# -- activation patching -------------------------------------------------------------------------


def activation_patch_resid(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    kind: str = "resid_pre",
    *,
    direction: Direction = "denoising",
    sites_per_batch: int | None = None,
) -> Float[Tensor, "n_layers pos"]:
    """The metric with the residual stream (or ``attn_out``/``mlp_out``) patched at one (layer, position).

    Entry ``[layer, pos]`` is the metric of the run with ``blocks.{layer}.hook_{kind}`` at ``pos``
    (every prompt of the batch) replaced by its value in the other run. With the default
    ``direction="denoising"`` this is TransformerLens's ``get_act_patch_resid_pre(model,
    corrupted_tokens, clean_cache, metric)`` (``get_act_patch_attn_out`` for ``kind="attn_out"``...).
    One caveat: on a TransformerLens 4.3 bridge ``hook_resid_mid`` is an alias of ``ln2.hook_in``,
    so patching it changes only the MLP's input while the skip connection keeps the unpatched
    stream; on our `GPT` (as on TransformerLens's old ``HookedTransformer``) it patches the stream.

    Args:
        kind: one of `RESID_KINDS` (``resid_mid`` and ``mlp_out`` need a model with MLPs).
        direction: ``"denoising"`` (run corrupted, patch in clean) or ``"noising"`` (the reverse).
        sites_per_batch: how many patched copies of the batch share one forward pass (default: as
            many as fit in about 8192 token rows).

    Raises:
        ValueError: prompts of different shapes, an unknown kind or direction, a non-scalar metric.
        KeyError: the model has no such hook (e.g. ``mlp_out`` on an attention-only model).
    """
    base, source = _runs(model, clean_tokens, corrupted_tokens, direction)
    _checked_metric(model, base, metric)
    spec = model_spec(model)
    names = [_kind_name(model, kind, RESID_KINDS, layer) for layer in range(spec.n_layers)]
    with torch.no_grad():
        _, cache = run_with_cache(model, source, names)
    sites = [(name, (pos,)) for name in names for pos in range(base.shape[1])]
    values = patch_sites(model, base, cache, metric, sites, sites_per_batch=sites_per_batch)
    return values.view(spec.n_layers, base.shape[1])


def activation_patch_heads(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    *,
    by_pos: bool = False,
    kind: str = "z",
    direction: Direction = "denoising",
    sites_per_batch: int | None = None,
) -> Float[Tensor, "n_layers n_heads"] | Float[Tensor, "n_layers pos n_heads"]:
    """The metric with one head's output (``hook_z``, or its q, k or v) patched.

    ``by_pos=False``: entry ``[layer, head]`` patches the head at every position at once
    (TransformerLens's ``get_act_patch_attn_head_out_all_pos``). ``by_pos=True``: entry
    ``[layer, pos, head]`` patches it at one position (``get_act_patch_attn_head_out_by_pos``,
    same axis order). With ``kind="q"``, ``"k"`` or ``"v"`` the head's query, key or value is
    patched instead (``get_act_patch_attn_head_q_all_pos``...).

    Args:
        kind: one of `HEAD_KINDS`.
        direction: ``"denoising"`` (run corrupted, patch in clean) or ``"noising"`` (the reverse).
        sites_per_batch: patched copies of the batch per forward pass (default: about 8192 token rows).

    Raises:
        ValueError: prompts of different shapes, an unknown kind or direction, a non-scalar metric.
    """
    base, source = _runs(model, clean_tokens, corrupted_tokens, direction)
    _checked_metric(model, base, metric)
    spec = model_spec(model)
    names = [_kind_name(model, kind, HEAD_KINDS, layer) for layer in range(spec.n_layers)]
    positions = range(base.shape[1]) if by_pos else [slice(None)]
    with torch.no_grad():
        _, cache = run_with_cache(model, source, names)
    sites = [(name, (pos, head)) for name in names for pos in positions for head in range(spec.n_heads)]
    values = patch_sites(model, base, cache, metric, sites, sites_per_batch=sites_per_batch)
    if by_pos:
        return values.view(spec.n_layers, base.shape[1], spec.n_heads)
    return values.view(spec.n_layers, spec.n_heads)


# -- path patching -------------------------------------------------------------------------------


def _check_heads(model: Any, heads: Any, what: str) -> list[Head]:
    if isinstance(heads, tuple) and len(heads) == 2 and all(isinstance(h, int) for h in heads):
        heads = [heads]  # one (layer, head) pair
    try:
        heads = list(heads)
    except TypeError:
        raise TypeError(f"{what} should be a list of (layer, head) pairs, got {type(heads).__name__}") from None
    if not heads:
        raise ValueError(f"{what} should name at least one (layer, head) pair, got none")
    out = []
    for pair in heads:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{what} should be (layer, head) pairs, got {pair!r}")
        out.append(check_head(model, pair[0], pair[1]))
    return out


def _check_inputs(receiver_input: Any) -> list[str]:
    inputs = [receiver_input] if isinstance(receiver_input, str) else list(receiver_input)
    if not inputs or any(i not in ("q", "k", "v") for i in inputs):
        raise ValueError(f"receiver_input should be 'q', 'k', 'v' or a list of them, got {receiver_input!r}")
    return inputs


def path_patch_senders(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    sender_sets: Sequence[Sequence[Head]],
    receivers: Sequence[Head] | None = None,
    receiver_input: str | Sequence[str] = "q",
    *,
    direction: Direction = "noising",
    sites_per_batch: int | None = None,
    freeze_mlps: bool = False,
) -> Float[Tensor, " n_sets"]:
    """`path_patch` for each set of senders in ``sender_sets``, several sets per stacked forward pass.

    Entry ``i`` is the metric with the path from the heads of ``sender_sets[i]`` (patched together)
    to ``receivers`` patched; `path_patch` explains the three steps and the arguments.

    Raises:
        ValueError: as `path_patch`.
    """
    base, source = _runs(model, clean_tokens, corrupted_tokens, direction)
    _checked_metric(model, base, metric)
    if isinstance(sender_sets, (str, bytes)) or not list(sender_sets):
        raise ValueError(f"sender_sets should be a list of lists of (layer, head) pairs, got {sender_sets!r}")
    sender_sets = [_check_heads(model, senders, "senders") for senders in sender_sets]
    receivers = None if receivers is None else _check_heads(model, receivers, "receivers")
    inputs = _check_inputs(receiver_input)
    per_batch, batch = _sites_per_batch(sites_per_batch, base), base.shape[0]
    spec = model_spec(model)
    z_names = [hook_name("z", layer) for layer in range(spec.n_layers)]
    freeze = freeze_mlps and not spec.attn_only
    mlp_names = [hook_name("mlp_out", layer) for layer in range(spec.n_layers)] if freeze else []
    with torch.no_grad():  # step 1: cache every head's output (and MLP's, to freeze them) in both runs
        _, base_cache = run_with_cache(model, base, z_names + mlp_names)
        _, source_cache = run_with_cache(model, source, z_names)
    values = []
    for start in range(0, len(sender_sets), per_batch):
        chunk = sender_sets[start:start + per_batch]  # copy c of the batch patches chunk[c]
        # Step 2: every head frozen to the base run, except the senders, patched from the source run.
        frozen = {}
        for layer, name in enumerate(z_names):
            z = base_cache[name].repeat(len(chunk), 1, 1, 1)
            for copy, senders in enumerate(chunk):
                heads = [h for (l, h) in senders if l == layer]
                z[copy * batch:(copy + 1) * batch, :, heads] = source_cache[name][:, :, heads]
            frozen[name] = z
        for name in mlp_names:  # with freeze_mlps, the MLPs keep their base outputs: direct paths only
            frozen[name] = base_cache[name].repeat(len(chunk), 1, 1)
        hooks = [(name, lambda act, hook, name=name: frozen[name]) for name in z_names + mlp_names]
        if receivers is None:  # the receiver is the final residual stream: read step 2's logits
            with torch.no_grad():
                values += _stacked_metrics(model, base, metric, hooks, len(chunk))
            continue
        layers = sorted({layer for layer, _ in receivers})
        wanted = [hook_name(i, layer) for layer in layers for i in inputs]
        recomputed: dict[str, Tensor] = {}
        hooks += [(name, lambda act, hook, name=name: recomputed.__setitem__(name, act.clone()))
                  for name in wanted]
        with torch.no_grad():
            run_with_hooks(model, base.repeat(len(chunk), 1), hooks)

        # Step 3: the base run again, with only the receivers' inputs taken from step 2.
        def patch(act: Tensor, hook: Any, name: str, layer: int) -> Tensor:
            act = act.clone()
            heads = [h for (l, h) in receivers if l == layer]
            act[:, :, heads] = recomputed[name][:, :, heads]
            return act

        hooks = [(hook_name(i, layer), lambda act, hook, n=hook_name(i, layer), layer=layer:
                  patch(act, hook, n, layer)) for layer in layers for i in inputs]
        with torch.no_grad():
            values += _stacked_metrics(model, base, metric, hooks, len(chunk))
    return torch.stack(values)


def path_patch(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    senders: Sequence[Head] | Head,
    receivers: Sequence[Head] | None = None,
    receiver_input: str | Sequence[str] = "q",
    *,
    direction: Direction = "noising",
    freeze_mlps: bool = False,
) -> Float[Tensor, ""]:
    """The metric with the path from ``senders`` to ``receivers`` patched (Wang et al. 2022, ARENA 1.4.1).

    With the default ``direction="noising"``, as ARENA's ``get_path_patch_head_to_heads``:

    1. run the clean and the corrupted prompt and cache every head's output ``hook_z``;
    2. run the clean prompt with every head's ``hook_z`` frozen to its clean value, except the
       senders', patched from the corrupted run; record the receivers' ``receiver_input`` (their
       queries, keys or values), now recomputed from a residual stream in which only the senders
       (directly, or through MLPs, which are not frozen) have changed;
    3. run the clean prompt with only the receivers' recorded inputs patched in, and read the metric.

    With ``receivers=None`` the receiver is the final residual stream (ARENA's
    ``get_path_patch_head_to_final_resid_post``): the metric of step 2 itself, which measures the
    senders' effect on the logits through every path but other heads. ``direction="denoising"``
    swaps the prompts' roles (run corrupted, senders from clean).

    Args:
        senders: ``(layer, head)`` pairs patched together (or one pair).
        receivers: ``(layer, head)`` pairs whose inputs are patched, or None for the logits.
        receiver_input: ``"q"``, ``"k"``, ``"v"``, or several of them (e.g. ``["k", "v"]``).
        freeze_mlps: also freeze every MLP's output to the base run in step 2, so that only the
            *direct* path counts: the senders' ``Δz W_O`` added to the residual stream that the
            receivers (or the unembedding) read, as TransformerLens's ``get_act_patch_direct_path``.
            ARENA and Wang et al. leave MLPs free (False, the default).

    Raises:
        ValueError: prompts of different shapes, a head out of range, an unknown receiver input or
            direction, a non-scalar metric.
    """
    _runs(model, clean_tokens, corrupted_tokens, direction)
    senders = _check_heads(model, senders, "senders")
    return path_patch_senders(model, clean_tokens, corrupted_tokens, metric, [senders], receivers,
                              receiver_input, direction=direction, freeze_mlps=freeze_mlps)[0]


def path_patch_heads(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    receivers: Sequence[Head] | None = None,
    receiver_input: str | Sequence[str] = "q",
    *,
    direction: Direction = "noising",
    sites_per_batch: int | None = None,
    freeze_mlps: bool = False,
) -> Float[Tensor, "n_layers n_heads"]:
    """`path_patch` with each head in turn as the only sender: a ``(n_layers, n_heads)`` table.

    A sender in a layer at or after the last receiver's cannot reach a receiver's input; its entry
    is the unpatched base metric (exactly what the three steps would give).

    Args:
        receivers: ``(layer, head)`` pairs, or None for the final residual stream (logits).
        receiver_input: ``"q"``, ``"k"``, ``"v"`` or several of them.
        direction: ``"noising"`` (ARENA: run clean, senders from corrupted) or ``"denoising"``.
        sites_per_batch: senders per stacked forward pass (default: about 8192 token rows).
        freeze_mlps: freeze the MLPs too, so that only direct paths count (see `path_patch`).

    Raises:
        ValueError: as `path_patch`.
    """
    base, _ = _runs(model, clean_tokens, corrupted_tokens, direction)
    base_value = _checked_metric(model, base, metric)
    spec = model_spec(model)
    recv = None if receivers is None else _check_heads(model, receivers, "receivers")
    last = spec.n_layers if recv is None else max(layer for layer, _ in recv)
    senders = [[(layer, head)] for layer in range(last) for head in range(spec.n_heads)]
    out = base_value.repeat(spec.n_layers, spec.n_heads)
    if senders:
        values = path_patch_senders(model, clean_tokens, corrupted_tokens, metric, senders, recv, receiver_input,
                                    direction=direction, sites_per_batch=sites_per_batch, freeze_mlps=freeze_mlps)
        out[:last] = values.view(last, spec.n_heads)
    else:
        _check_inputs(receiver_input)
    return out


# -- attribution patching ------------------------------------------------------------------------


def attribution_patch(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    names: Sequence[str],
    *,
    direction: Direction = "denoising",
) -> tuple[Float[Tensor, ""], dict[str, Tensor]]:
    """``(base metric, {hook name: (a_source - a_base) * d metric / d a_base})``, element by element.

    The run being patched (the corrupted one for ``"denoising"``) runs once forward with gradients
    and once backward; the other run is only cached. Summing an entry over any set of its
    elements gives the first-order estimate of patching exactly those elements (Nanda 2023), so
    the sweeps below only sum: over ``d_model`` per position, over ``d_head`` per head.

    Raises:
        ValueError: prompts of different shapes, an unknown direction, a non-scalar metric.
        KeyError: a name the model has no hook point for.
    """
    base, source = _runs(model, clean_tokens, corrupted_tokens, direction)
    if not callable(metric):
        raise TypeError(f"metric should be callable as metric(logits) -> scalar tensor, got {type(metric).__name__}")
    names = list(names)
    with torch.no_grad():
        _, source_cache = run_with_cache(model, source, names)
    acts: dict[str, Tensor] = {}

    def keep(act: Tensor, hook: Any, name: str) -> Tensor:
        if not act.requires_grad:  # frozen weights: start the graph here (nothing upstream needs it)
            act = act.detach().requires_grad_(True)
        acts[name] = act
        return act  # returned, so the forward pass consumes this very tensor (also on a bridge)

    with torch.enable_grad():
        logits = run_with_hooks(model, base, [(n, lambda act, hook, n=n: keep(act, hook, n)) for n in names])
        value = check_scalar_metric(metric(logits), "metric")
        # autograd.grad, not backward(): no parameter's .grad is touched
        grads = torch.autograd.grad(value, [acts[n] for n in names], allow_unused=True)
    terms = {}
    for name, grad in zip(names, grads):
        delta = source_cache[name] - acts[name].detach()
        terms[name] = delta * grad if grad is not None else torch.zeros_like(delta)
    return value.detach(), terms


def attribution_patch_resid(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    kind: str = "resid_pre",
    *,
    direction: Direction = "denoising",
) -> Float[Tensor, "n_layers pos"]:
    """Attribution patching's estimate of `activation_patch_resid`, from one forward and one backward pass.

    Entry ``[layer, pos]`` is ``metric(base) + sum over batch and d_model of (a_source - a_base) *
    d metric / d a_base`` at ``blocks.{layer}.hook_{kind}``, position ``pos`` (Nanda 2023): the
    linear approximation of the patched metric. Subtract the base metric for Nanda's attribution
    score. The gradient is taken at the run being patched: the corrupted one for ``"denoising"``
    (as Nanda's notebook and TransformerLens's ``attribution_patch``), the clean one for ``"noising"``.

    Raises:
        ValueError: prompts of different shapes, an unknown kind or direction, a non-scalar metric.
        KeyError: the model has no such hook.
    """
    spec = model_spec(model)
    names = [_kind_name(model, kind, RESID_KINDS, layer) for layer in range(spec.n_layers)]
    _runs(model, clean_tokens, corrupted_tokens, direction)
    value, terms = attribution_patch(model, clean_tokens, corrupted_tokens, metric, names, direction=direction)
    return value + torch.stack([terms[n].sum(dim=(0, 2)) for n in names])  # (layer, pos)


def attribution_patch_heads(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    *,
    by_pos: bool = False,
    kind: str = "z",
    direction: Direction = "denoising",
) -> Float[Tensor, "n_layers n_heads"] | Float[Tensor, "n_layers pos n_heads"]:
    """Attribution patching's estimate of `activation_patch_heads` (same shapes), from one backward pass.

    ``[layer, pos, head]`` (``by_pos=True``) is ``metric(base) + (a_source - a_base) · d metric / d
    a_base`` summed over the batch and ``d_head`` for that head's ``hook_{kind}`` at that position;
    ``by_pos=False`` sums over positions too (the linear estimate of patching every position at once).

    Raises:
        ValueError: prompts of different shapes, an unknown kind or direction, a non-scalar metric.
    """
    spec = model_spec(model)
    names = [_kind_name(model, kind, HEAD_KINDS, layer) for layer in range(spec.n_layers)]
    _runs(model, clean_tokens, corrupted_tokens, direction)
    value, terms = attribution_patch(model, clean_tokens, corrupted_tokens, metric, names, direction=direction)
    per_pos = torch.stack([terms[n].sum(dim=(0, 3)) for n in names])  # (layer, pos, head)
    return value + (per_pos if by_pos else per_pos.sum(dim=1))

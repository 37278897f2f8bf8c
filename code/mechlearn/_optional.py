"""Optional dependencies: import one, or fail with an error that names the extra that installs it.

``mechlearn`` itself needs only NumPy, einops, jaxtyping and PyYAML. Everything else is an
*extra* (see ``pyproject.toml``)::

    torch             pip install "mechlearn[torch]"     optim, cnn, generative, gpt, raytrace, distributed
    tqdm              pip install "mechlearn[gpt]"       the progress bar of mechlearn.gpt.train
    transformer_lens  pip install "mechlearn[interop]"   mechlearn.gpt.interop (to/from TransformerLens)
    transformers      pip install "mechlearn[interop]"   mechlearn.gpt.interop (to Hugging Face GPT2LMHeadModel)
    gymnasium         pip install "mechlearn[rl]"        mechlearn.rl (environments)
    plotly            pip install "mechlearn[interp]"    mechlearn.interp.plots (interactive figures)
    matplotlib        pip install "mechlearn[display]"   mechlearn.display.plot_*
    sklearn           pip install "mechlearn[data]"      mechlearn.data.load_digits_split

`require` raises ``ModuleNotFoundError`` (a subclass of ``ImportError``) whose message says which
extra to install, instead of the bare "No module named 'torch'".
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "require"]

EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "torch"),
    "tqdm": ("tqdm", "gpt"),
    "transformer_lens": ("transformer-lens", "interop"),
    "transformers": ("transformers", "interop"),
    "gymnasium": ("gymnasium", "rl"),
    "plotly": ("plotly", "interp"),
    "matplotlib": ("matplotlib", "display"),
    "sklearn": ("scikit-learn", "data"),
}
"""Top-level module → (the distribution that provides it, the ``mechlearn`` extra that installs it)."""


def require(module: str, needed_by: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"torch"`` or ``"matplotlib.pyplot"``), or raise naming the extra that installs it.

    Args:
        module: the module to import.
        needed_by: what needs it, for the message (e.g. ``"mechlearn.optim"``).
        extra: the extra to recommend, if not the one `EXTRAS` lists for ``module``
            (``mechlearn.gpt`` recommends ``gpt``, which also brings tqdm).

    Raises:
        ModuleNotFoundError: ``module`` is not installed; the message gives the ``pip install`` line.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        top = module.split(".")[0]
        if err.name is not None and err.name.split(".")[0] != top:
            raise  # something *inside* the installed module is missing: not ours to explain
        dist, default_extra = EXTRAS.get(top, (top, top))
        hint = " (install the torch build you want first: an unpinned torch pulls a large CUDA build)" if top == "torch" else ""
        raise ModuleNotFoundError(
            f"{needed_by} needs {dist}, which is not installed. "
            f"Install it with: pip install \"mechlearn[{extra or default_extra}]\"{hint}",
            name=top,
        ) from err

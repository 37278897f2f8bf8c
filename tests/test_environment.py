"""The pinned environment provides the references later days rely on, offline and on the CPU."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_every_requirement_is_pinned_and_torch_is_the_pinned_release():
    lines = [l for l in (ROOT / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert all("==" in l for l in lines), f"unpinned requirements: {[l for l in lines if '==' not in l]}"
    import torch

    assert torch.__version__.split("+")[0] == _pins()["torch"] == "2.13.0"


def test_the_issue_s_pins_are_present():
    pins = _pins()
    for name in ("numpy", "matplotlib", "plotly", "jupyter", "nbclient", "jupytext", "quartodoc"):
        assert name in pins, f"requirements.txt should pin {name}"
    assert pins["transformer-lens"].split(".")[0] == "4", "Part II needs TransformerLens 4.x (TransformerBridge.boot_native)"


def test_setup_installs_the_cpu_build_of_torch_first():
    makefile = (ROOT / "Makefile").read_text()
    assert "TORCH_INDEX ?= https://download.pytorch.org/whl/cpu" in makefile
    torch_line = next(i for i, l in enumerate(makefile.splitlines()) if "$(TORCH_INDEX)" in l and "pip install" in l)
    rest_line = next(i for i, l in enumerate(makefile.splitlines()) if "pip install -r requirements.txt" in l)
    assert torch_line < rest_line, "torch must come from the CPU index before requirements.txt pulls PyPI's CUDA build"
    assert "https://download.pytorch.org/whl/cpu" in (ROOT / "environment.yml").read_text()


def test_the_publish_workflow_has_least_privilege():
    import yaml

    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "publish.yml").read_text())
    assert flow["permissions"] == {"contents": "read"}, "workflow-level permissions should only read the repository"
    assert flow["concurrency"]["group"] == "pages"
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    assert "permissions" not in build, "the build job runs the project's code: it should not be able to write to Pages"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    uses = [step.get("uses", "") for job in (build, deploy) for step in job["steps"]]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    assert any(u.startswith("quarto-dev/quarto-actions/setup@") for u in uses)
    test_flow = yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text())
    assert test_flow["permissions"] == {"contents": "read"}


def test_environment_yml_and_workflows_read_the_same_pins():
    assert "-r requirements.txt" in (ROOT / "environment.yml").read_text()
    for workflow in (ROOT / ".github" / "workflows").glob("*.yml"):
        text = workflow.read_text()
        assert "requirements-quarto.txt" in text and "make " in text, f"{workflow.name} should use the Makefile and the pinned Quarto"
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_workflows_and_environment_yml_pin_the_python_the_checkpoints_were_made_with():
    """One exact Python everywhere it is chosen: the release the committed manifests record."""
    import json

    import yaml

    checkpoints = ROOT / "code" / "mechlearn" / "gpt" / "checkpoints"
    made_with = {json.loads((checkpoints / "char_lm.json").read_text())["corpus"]["python"],
                 json.loads((checkpoints / "scaling.json").read_text())["python"]}
    assert len(made_with) == 1, f"the committed manifests were made with different Pythons: {made_with}"
    (version,) = made_with
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    assert f"python={version}" in conda, f"environment.yml should pin python={version} exactly, has {conda}"
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        steps = [step for job in yaml.safe_load(workflow.read_text())["jobs"].values() for step in job["steps"]]
        pins = [str(step.get("with", {}).get("python-version")) for step in steps
                if step.get("uses", "").startswith("actions/setup-python@")]
        assert pins and all(pin == version for pin in pins), f"{workflow.name} should set up Python {version} exactly, has {pins}"


def test_transformer_lens_builds_a_small_model_offline():
    """TransformerLens 4.x builds a model from a config with no download (Part II compares our GPT to it)."""
    import torch
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    cfg = TransformerBridgeConfig(d_model=16, d_head=4, n_heads=4, n_layers=1, n_ctx=8, d_vocab=11, d_mlp=32, act_fn="gelu")
    model = TransformerBridge.boot_native(cfg)
    tokens = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(0))
    logits, cache = model.run_with_cache(tokens)
    assert logits.shape == (2, 5, 11)
    assert "hook_embed" in cache


def test_mechlearn_installs_from_a_git_url_into_another_project(tmp_path):
    """What a reusing engineer does: pip install from the repository's git URL (here a file:// one)."""
    import shutil
    import subprocess
    import sys

    import pytest

    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: installing from a git URL needs one")
    target = tmp_path / "site-packages"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target),
         f"git+file://{ROOT}"],
        check=True, capture_output=True, text=True, timeout=300,
    )
    code = ("import mechlearn, mechlearn.backprop, mechlearn.testing, pathlib; print(mechlearn.__file__); "
            "print(mechlearn.backprop.Value(2.0) * 3); "
            "ckpt = pathlib.Path(mechlearn.__file__).parent / 'gpt' / 'checkpoints'; "
            "print(sorted(p.name for p in ckpt.glob('*'))); "
            "import gzip; print(len(gzip.decompress((ckpt.parent / 'data' / 'pydoc_topics.txt.gz').read_bytes())))")
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
                         check=True, capture_output=True, text=True)
    first, second, third, fourth = out.stdout.splitlines()
    assert first.startswith(str(target)) and second.startswith("Value(6")
    # The committed checkpoints travel with the package, so load_char_lm works in an install.
    assert third == str(["char_lm.json", "char_lm.pt", "scaling.json"]), third
    # So does the corpus they were trained on (466,273 bytes of CPython 3.11.7's pydoc text).
    assert fourth == "466273", fourth

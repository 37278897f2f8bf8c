"""The page harness itself: it must fail pages that error, time out or reach the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagerun import cell_options, compare_with_frozen, frozen_markdown, is_executable, run_page, to_notebook


def _page(tmp_path, body: str, front: str = "title: t"):
    path = tmp_path / "page.qmd"
    path.write_text(f"---\n{front}\n---\n\nSome prose.\n\n{body}\n")
    return path


def test_a_raising_cell_fails_the_page(tmp_path):
    run = run_page(_page(tmp_path, "```{python}\nraise ValueError('boom')\n```"))
    assert run.error is not None and "boom" in run.error


def test_the_network_is_blocked_but_loopback_is_not(tmp_path):
    body = """```{python}
import socket, urllib.request
try:
    urllib.request.urlopen("http://example.com", timeout=5)
    print("REACHED")
except OSError as err:
    print("BLOCKED" if "network access is blocked" in str(err) else f"OTHER {err!r}")
try:
    socket.create_connection(("93.184.216.34", 80), timeout=5)
    print("REACHED")
except OSError as err:
    print("BLOCKED" if "network access is blocked" in str(err) else f"OTHER {err!r}")
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
socket.create_connection(server.getsockname(), timeout=5).close()
print("LOOPBACK OK")
```"""
    run = run_page(_page(tmp_path, body))
    assert run.error is None, run.error
    assert "".join(run.texts).split() == ["BLOCKED", "BLOCKED", "LOOPBACK", "OK"]


def test_the_budget_is_cpu_time_and_wall_time_is_only_a_hang_guard(tmp_path):
    spin = "```{python}\nimport time\nt = time.process_time()\nwhile time.process_time() - t < 1.5:\n    pass\n```"
    run = run_page(_page(tmp_path, spin), limit=1)
    assert run.error is not None and "of CPU time, over the 1 s limit" in run.error, run.error
    assert run.cpu_seconds >= 1.5
    # Sleeping costs wall time but no CPU: a busy machine (or a slow disk) cannot fail a page.
    sleepy = run_page(_page(tmp_path, "```{python}\nimport time\ntime.sleep(2)\n```"), limit=1)
    assert sleepy.error is None, sleepy.error
    assert sleepy.cpu_seconds < 1 <= 2 <= sleepy.seconds
    hung = run_page(_page(tmp_path, "```{python}\nimport time\ntime.sleep(4)\n```"), limit=60, wall_limit=2)
    assert hung.error is not None and "longer than 2 s of wall time" in hung.error


def test_cpu_time_counts_the_processes_a_page_waits_for(tmp_path):
    body = ("```{python}\nimport subprocess, sys\n"
            "subprocess.run([sys.executable, '-c', 'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 1.5: pass'], check=True)\n```")
    run = run_page(_page(tmp_path, body))
    assert run.error is None, run.error
    assert run.cpu_seconds >= 1.5, run.cpu_seconds


def test_frozen_output_must_be_current_and_show_what_the_page_prints(tmp_path):
    import hashlib
    import json

    page = tmp_path / "daily" / "p" / "index.qmd"
    page.parent.mkdir(parents=True)
    page.write_text("---\ntitle: t\n---\n\n```{python}\nprint(1 + 1)\n```\n")
    (tmp_path / "code" / "mechlearn").mkdir(parents=True)
    (tmp_path / "requirements.txt").write_text("numpy\n")
    markdown, problem = frozen_markdown(tmp_path, page)
    assert markdown is None and "has no frozen output" in problem
    results = tmp_path / "_freeze" / "daily" / "p" / "index" / "execute-results" / "html.json"
    results.parent.mkdir(parents=True)
    frozen = {"hash": hashlib.md5(page.read_bytes()).hexdigest(), "result": {"markdown": "::: {.cell-output}\n```\n2\n```\n:::"}}
    results.write_text(json.dumps(frozen))
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import freeze_guard

    (tmp_path / freeze_guard.RECORD_NAME).write_text(json.dumps({"daily/p/index.qmd": freeze_guard.fingerprint(tmp_path, "daily/p/index.qmd")}))
    markdown, problem = frozen_markdown(tmp_path, page)
    assert problem is None, problem
    assert compare_with_frozen(["2\n"], markdown) is None
    assert "not in the committed _freeze/ output" in compare_with_frozen(["3\n"], markdown)
    page.write_text(page.read_text() + "\nMore prose.\n")
    assert "changed since it was frozen" in frozen_markdown(tmp_path, page)[1]


def test_html_outputs_are_compared_by_what_a_reader_sees():
    # Quarto hoists an HTML output's scripts into the page head when it freezes it; the table text stays.
    frozen = '::: {.cell-output .cell-output-display}\n```{=html}\n<table><tr><td>0.985</td></tr></table>\n```\n:::'
    assert compare_with_frozen(['<script>var x = 1;</script><table>\n<tr><td>0.985</td></tr></table>'], frozen) is None
    assert compare_with_frozen(['<table><tr><td>0.986</td></tr></table>'], frozen) is not None


def test_quarto_cell_options_are_honoured(tmp_path):
    body = "```{python}\n#| eval: false\nraise SystemExit\n```\n\n```{python}\n#| error: true\n1 / 0\n```\n\n```{python}\nprint('ran', flush=True)\n```"
    path = _page(tmp_path, body)
    assert [c.source.splitlines()[0] for c in to_notebook(path).cells[1:-1]] == ["#| error: true", "print('ran', flush=True)"]
    run = run_page(path)
    assert run.error is None, run.error
    assert "ran\n" in run.texts
    assert cell_options("#| eval: false\n#| fig-alt: a b\nx = 1\n#| not: an option") == {"eval": "false", "fig-alt": "a b"}


def test_pages_without_code_or_with_eval_off_are_not_executed(tmp_path):
    assert not is_executable(_page(tmp_path, "No code here."))
    assert not is_executable(_page(tmp_path, "```{python}\n1\n```", front="title: t\nexecute:\n  eval: false"))
    assert is_executable(_page(tmp_path, "```{python}\n1\n```"))


def test_a_malformed_fence_is_reported(tmp_path):
    path = _page(tmp_path, "```{python}\n1\n```\n\n```{python}\n2\n")
    with pytest.raises(AssertionError):
        to_notebook(path)


def test_printed_text_is_compared_whole_not_by_flush_chunk(tmp_path):
    # A loop that prints with pauses reaches the client in several stream messages; how many
    # depends on timing, so two runs of a deterministic page must still compare equal.
    page = _page(tmp_path, "```{python}\nimport sys, time\nfor i in range(3):\n    print(i); sys.stdout.flush(); time.sleep(0.3)\n```")
    run = run_page(page)
    assert run.error is None, run.error
    assert run.texts == ["0\n1\n2\n"], run.texts
    outputs = run.notebook.cells[1].outputs  # cell 0 is the guard, the last the CPU-time trailer
    assert len(outputs) >= 2, "the test needs the kernel to send the text in more than one chunk"


def test_a_warning_a_reader_would_see_fails_the_page_unless_the_cell_hides_it(tmp_path):
    shown = run_page(_page(tmp_path, "```{python}\nimport warnings\nwarnings.warn('careful')\n```"))
    assert shown.error and "stderr" in shown.error and "careful" in shown.error
    hidden = run_page(_page(tmp_path, "```{python}\n#| warning: false\nimport warnings\nwarnings.warn('careful')\n```"))
    assert hidden.error is None, hidden.error


def test_rounding_level_numbers_may_differ_but_real_numbers_may_not():
    from pagerun import compare_with_frozen

    frozen = "| ✅ | grad | 5.3e-15 | `FLOAT64` |\nloss 0.4213"
    assert compare_with_frozen(["| ✅ | grad | 3.6e-15 | `FLOAT64` |"], frozen) is None
    assert compare_with_frozen(["| ✅ | grad | 3.6e-09 | `FLOAT64` |"], frozen) is not None
    assert compare_with_frozen(["loss 0.4214"], frozen) is not None

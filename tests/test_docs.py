"""The documentation builds with warnings as errors, and the gallery runs.

``python -m sphinx -W --keep-going -b html docs <out>`` executes every
``examples/plot_*.py`` (sphinx-gallery) and renders the API reference from
the numpydoc docstrings. Deselect with ``-m "not docs"`` for a quick run.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("sphinx")
pytest.importorskip("sphinx_gallery")


@pytest.mark.docs
def test_sphinx_build_with_warnings_as_errors(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="2")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for page in ("index.html", "getting_started.html", "user_guide.html", "api.html",
                 "generated/sklearn_clmle.CLMLEEmbedder.html",
                 "generated/sklearn_clmle.LMLEEmbedder.html",
                 "auto_examples/index.html"):
        assert (tmp_path / page).is_file(), page
    examples = sorted((ROOT / "examples").glob("plot_*.py"))
    assert len(examples) >= 6
    for example in examples:
        html = tmp_path / "auto_examples" / f"{example.stem}.html"
        assert html.is_file(), html
        assert '<img src="../_images/sphx_glr_' in html.read_text(), f"no figure in {html}"
    assert "\\frac" in (tmp_path / "user_guide.html").read_text()  # maths reach MathJax


def test_getting_started_quickstart_runs(capsys):
    """The quickstart code block of docs/getting_started.rst, executed as shown."""
    text = (ROOT / "docs" / "getting_started.rst").read_text()
    lines = []
    for line in text.split(".. code-block:: python\n\n", 1)[1].splitlines():
        if line.strip() and not line.startswith("   "):
            break  # the end of the indented block
        lines.append(line[3:])
    code = "\n".join(lines)
    assert 15 <= len(code.strip().splitlines()) <= 25
    exec(compile(code, "getting_started.rst", "exec"), {})
    out = capsys.readouterr().out
    scores = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines()
              if "balanced accuracy" in line]
    assert len(scores) == 2 and all(0.8 < s <= 1.0 for s in scores)


def _public_objects():
    import sklearn_clmle
    from sklearn_clmle import backbones, datasets, metrics, tta

    names = [(sklearn_clmle, n) for n in sklearn_clmle.__all__ if n != "__version__"]
    names += [(backbones, n) for n in ("MLP", "CNN1D", "CNN2D", "build_backbone")]
    names += [(datasets, n) for n in ("load_long_tailed_digits", "load_long_tailed_mnist1d",
                                      "long_tail_indices", "load_digit_strips")]
    names += [(metrics, n) for n in metrics.__all__ if not n.endswith("_scorer")]
    names += [(tta, "flip_concatenate")]
    return [(f"{module.__name__}.{name}", getattr(module, name)) for module, name in names]


@pytest.mark.parametrize("qualname, obj", _public_objects(), ids=lambda v: str(v)[:40])
def test_every_public_name_has_an_examples_section_and_an_api_page(qualname, obj):
    doc = obj.__doc__ or ""
    examples = doc.split("\n    Examples\n    --------\n", 1)
    assert len(examples) == 2 and ">>> " in examples[1], f"{qualname} has no doctest example"
    assert qualname.rsplit(".", 1)[1] in (ROOT / "docs" / "api.rst").read_text()

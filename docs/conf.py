"""Sphinx configuration of the sklearn_clmle documentation.

Build (warnings are errors; the gallery examples are executed)::

    python -m pip install -c constraints.txt -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import shutil
import sys
from pathlib import Path

import sklearn_clmle

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

project = "sklearn_clmle"
author = "the sklearn_clmle developers"
copyright = "2026, the sklearn_clmle developers"
release = version = sklearn_clmle.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "sg_execution_times.rst"]
templates_path = ["_templates"]

# -- API reference ------------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# Checked by numpydoc at build time: every public docstring has its sections
# in order, documents its parameters and returns, and shows an example.
numpydoc_validation_checks = {"GL06", "GL07", "PR01", "PR02", "RT01"}

# No network at build or view time: the links are written, never fetched.
intersphinx_mapping = {}



def _skip_routing_setters(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_*_request`` methods.

    Their docstrings point into scikit-learn's own glossary and labels, which
    do not exist here; the user guide documents metadata routing instead.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_routing_setters)


# -- Markdown (the user guide) ---------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# -- Gallery ------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(^|[/\\])quickstart\.py$",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("sklearn_clmle",),
}
os.environ.setdefault("MPLBACKEND", "Agg")

# -- HTML ---------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_clmle {version}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
}
html_sidebars = {"index": [], "getting_started": []}

# MathJax from Debian's libjs-mathjax when present, so maths render offline;
# otherwise Sphinx's default (a CDN, needs a network at view time).
_LOCAL_MATHJAX = Path("/usr/share/javascript/mathjax")
if (_LOCAL_MATHJAX / "MathJax.js").is_file():
    _target = HERE / "_build_static" / "mathjax"
    if not _target.exists():
        shutil.copytree(_LOCAL_MATHJAX, _target, symlinks=False)
    html_static_path.append(str(HERE / "_build_static"))
    mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML"
    # Debian ships MathJax 2: configure it the version-2 way, and keep MyST
    # from writing its version-3 configuration. MyST marks its sections
    # ``tex2jax_ignore`` and its maths ``math``, so only those are processed.
    myst_update_mathjax = False
    mathjax2_config = {
        "tex2jax": {
            "inlineMath": [["\\(", "\\)"]],
            "displayMath": [["\\[", "\\]"]],
            "processClass": "math|output_area",
            "ignoreClass": "tex2jax_ignore|mathjax_ignore|document",
        },
    }

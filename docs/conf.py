"""Sphinx configuration of the skfusemix documentation (``tox -e docs``)."""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")
# The build is offline: models and data come from installed packages only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import skfusemix  # noqa: E402

project = "skfusemix"
author = "skfusemix developers"
copyright = "skfusemix developers"
release = skfusemix.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"

# -- API reference ----------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {
    "members": True,
    "inherited-members": "BaseEstimator",
    # scikit-learn's metadata-routing and set_output plumbing, documented there
    "exclude-members": "get_metadata_routing,set_output,set_fit_request,"
    "set_transform_request,set_score_request",
}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- Markdown pages (user guide, changelog) ----------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- Examples gallery: every examples/plot_*.py is run at build time ---------
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skfusemix",),
    "reference_url": {"skfusemix": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "abort_on_example_error": True,
    "show_memory": False,
    "image_scrapers": ("matplotlib",),
}

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skfusemix {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "show_prev_next": False,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"install": [], "changelog": [], "cli": []}


# Shapes in docstrings name fitted attributes, "(n_features_in_,)": escape the
# trailing underscore, which reStructuredText reads as a link target.
_SHAPE_ATTRIBUTE = re.compile(r"(?<![`\w\\])(\w+)_(?=[,)])")


def _escape_shape_attributes(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if not line.lstrip().startswith((">>>", "...")) and "``" not in line:
            lines[i] = _SHAPE_ATTRIBUTE.sub(r"\1\\_", line)


def setup(app):
    app.connect("autodoc-process-docstring", _escape_shape_attributes)

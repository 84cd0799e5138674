"""Sphinx configuration of the skfusemix documentation (``tox -e docs``)."""

import os
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))  # _gallery_order
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
    "sphinx.ext.intersphinx",
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

# -- Links to other projects' documentation -----------------------------------
# The inventories are stored in docs/_intersphinx (written by make_inventories.py
# there), so the build needs no network; the links point to the live sites.
_INV = DOCS / "_intersphinx"
intersphinx_mapping = {
    name: (url, str(_INV / f"{name}.inv"))
    for name, url in [
        ("python", "https://docs.python.org/3/"),
        ("numpy", "https://numpy.org/doc/stable/"),
        ("scipy", "https://docs.scipy.org/doc/scipy/"),
        ("sklearn", "https://scikit-learn.org/stable/"),
        ("torch", "https://docs.pytorch.org/docs/stable/"),
        ("transformers", "https://huggingface.co/docs/transformers/main/en/"),
    ]
}

# -- Formulas: MathJax 3 from the django-static-mathjax wheel (docs extra) ----
# copied into _static at build time, so formulas render without network.
mathjax_path = "mathjax/tex-svg-full.js"
mathjax3_config = {"svg": {"fontCache": "global"}}


def _mathjax_source():
    from importlib.resources import files

    return (
        Path(str(files("mathjax"))) / "static" / "mathjax" / "es5" / "tex-svg-full.js"
    )


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_mathjax_source(), target / "tex-svg-full.js")


# -- Examples gallery: every examples/plot_*.py is run at build time ---------
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "_gallery_order.NewcomerOrder",
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
html_css_files = ["skfusemix.css"]
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "header_links_before_dropdown": 9,  # every page in the navbar, no "More"
    "show_prev_next": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# Pages without sections of their own get no (empty) left sidebar; the API
# reference and the generated pages keep the grouped API navigation.
html_sidebars = {
    "api": ["api-nav.html"],
    "generated/*": ["api-nav.html"],
}
html_sidebars |= {
    page: []
    for page in (
        "index",
        "install",
        "user_guide",
        "small_data",
        "scale",
        "cli",
        "changelog",
        "auto_examples/index",
        "auto_examples/plot_*",
    )
}


def _api_groups(path=DOCS / "api.rst"):
    """The sections of the API reference and the pages of their entries, for
    the grouped sidebar (_templates/api-nav.html): [(title, anchor, [(label,
    page)])]."""
    lines = path.read_text(encoding="utf-8").splitlines()
    groups, module, in_table = [], "", False
    for i, line in enumerate(lines):
        underline = lines[i + 1] if i + 1 < len(lines) else ""
        if line and underline.startswith("===") and not line.startswith("="):
            if i == 0 or not lines[i - 1].startswith("==="):  # not the page title
                anchor = re.sub(r"[^a-z0-9]+", "-", line.lower()).strip("-")
                groups.append((line, anchor, []))
        elif match := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = match[1]
        elif line.startswith(".. "):
            in_table = line.startswith(".. autosummary::")
        elif in_table and (match := re.fullmatch(r" {3}([A-Za-z_][\w.]*)", line)):
            name = match[1]
            groups[-1][2].append((name.split(".")[-1], f"generated/{module}.{name}"))
        elif line and not line.startswith(" "):
            in_table = False
    return [group for group in groups if group[2]]


html_context = {"api_groups": _api_groups()}


# Shapes in docstrings name fitted attributes, "(n_features_in_,)": escape the
# trailing underscore, which reStructuredText reads as a link target.
_SHAPE_ATTRIBUTE = re.compile(r"(?<![`\w\\])(\w+)_(?=[,)])")


def _escape_shape_attributes(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if not line.lstrip().startswith((">>>", "...")) and "``" not in line:
            lines[i] = _SHAPE_ATTRIBUTE.sub(r"\1\\_", line)


def setup(app):
    app.connect("autodoc-process-docstring", _escape_shape_attributes)
    app.connect("build-finished", _copy_mathjax)

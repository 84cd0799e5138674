"""Write the intersphinx inventories the documentation links through.

The build runs offline, so instead of downloading each project's
``objects.inv`` it reads the small inventories stored beside this script: they
list the objects the pages, docstrings and examples of skfusemix refer to,
with their addresses on each project's public documentation site (the base
URLs are in ``docs/conf.py``).  Add an object here and run::

    python docs/_intersphinx/make_inventories.py

The files use the Sphinx inventory format, version 2 (a four-line header, then
zlib-compressed lines ``name domain:role priority uri display-name``).
"""

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

SK = "modules/generated/"
NP = "reference/generated/"
TORCH = "generated/"

# project: (version, [(name, role, uri relative to the project's base URL)])
INVENTORIES = {
    "python": (
        "3",
        [
            ("UserWarning", "py:exception", "library/exceptions.html#UserWarning"),
            ("ValueError", "py:exception", "library/exceptions.html#ValueError"),
            ("TypeError", "py:exception", "library/exceptions.html#TypeError"),
            (
                "FloatingPointError",
                "py:exception",
                "library/exceptions.html#FloatingPointError",
            ),
            (
                "KeyboardInterrupt",
                "py:exception",
                "library/exceptions.html#KeyboardInterrupt",
            ),
            ("Warning", "py:exception", "library/exceptions.html#Warning"),
            ("pathlib", "py:module", "library/pathlib.html#module-pathlib"),
            ("pathlib.Path", "py:class", "library/pathlib.html#pathlib.Path"),
            ("os.PathLike", "py:class", "library/os.html#os.PathLike"),
            (
                "tempfile.mkdtemp",
                "py:function",
                "library/tempfile.html#tempfile.mkdtemp",
            ),
            ("warnings", "py:module", "library/warnings.html#module-warnings"),
            ("logging", "py:module", "library/logging.html#module-logging"),
            (
                "warnings.simplefilter",
                "py:function",
                "library/warnings.html#warnings.simplefilter",
            ),
            ("dict", "py:class", "library/stdtypes.html#dict"),
            ("list", "py:class", "library/stdtypes.html#list"),
            ("str", "py:class", "library/stdtypes.html#str"),
            ("int", "py:class", "library/functions.html#int"),
            ("float", "py:class", "library/functions.html#float"),
            ("bool", "py:class", "library/functions.html#bool"),
            ("tuple", "py:class", "library/stdtypes.html#tuple"),
        ],
    ),
    "numpy": (
        "stable",
        [
            ("numpy", "py:module", "reference/index.html#module-numpy"),
            ("numpy.ndarray", "py:class", NP + "numpy.ndarray.html#numpy.ndarray"),
            ("numpy.memmap", "py:class", NP + "numpy.memmap.html#numpy.memmap"),
            ("numpy.load", "py:function", NP + "numpy.load.html#numpy.load"),
            ("numpy.save", "py:function", NP + "numpy.save.html#numpy.save"),
            ("numpy.array", "py:function", NP + "numpy.array.html#numpy.array"),
            ("numpy.mean", "py:function", NP + "numpy.mean.html#numpy.mean"),
            (
                "numpy.flatnonzero",
                "py:function",
                NP + "numpy.flatnonzero.html#numpy.flatnonzero",
            ),
            ("numpy.ndenumerate", "py:class", NP + "numpy.ndenumerate.html"),
            (
                "numpy.random.RandomState",
                "py:class",
                "reference/random/legacy.html#numpy.random.RandomState",
            ),
            (
                "numpy.float32",
                "py:attribute",
                "reference/arrays.scalars.html#numpy.float32",
            ),
            (
                "numpy.lib.format.open_memmap",
                "py:function",
                NP + "numpy.lib.format.open_memmap.html",
            ),
        ],
    ),
    "scipy": (
        "stable",
        [
            (
                "scipy.linalg.orthogonal_procrustes",
                "py:function",
                "reference/generated/scipy.linalg.orthogonal_procrustes.html",
            ),
            ("scipy.sparse", "py:module", "reference/sparse.html#module-scipy.sparse"),
        ],
    ),
    "sklearn": (
        "stable",
        [
            (
                "sklearn.pipeline.Pipeline",
                "py:class",
                SK + "sklearn.pipeline.Pipeline.html",
            ),
            (
                "sklearn.pipeline.make_pipeline",
                "py:function",
                SK + "sklearn.pipeline.make_pipeline.html",
            ),
            (
                "sklearn.model_selection.GridSearchCV",
                "py:class",
                SK + "sklearn.model_selection.GridSearchCV.html",
            ),
            (
                "sklearn.model_selection.GroupKFold",
                "py:class",
                SK + "sklearn.model_selection.GroupKFold.html",
            ),
            (
                "sklearn.model_selection.GroupShuffleSplit",
                "py:class",
                SK + "sklearn.model_selection.GroupShuffleSplit.html",
            ),
            (
                "sklearn.model_selection.train_test_split",
                "py:function",
                SK + "sklearn.model_selection.train_test_split.html",
            ),
            (
                "sklearn.preprocessing.StandardScaler",
                "py:class",
                SK + "sklearn.preprocessing.StandardScaler.html",
            ),
            (
                "sklearn.compose.TransformedTargetRegressor",
                "py:class",
                SK + "sklearn.compose.TransformedTargetRegressor.html",
            ),
            (
                "sklearn.cross_decomposition.CCA",
                "py:class",
                SK + "sklearn.cross_decomposition.CCA.html",
            ),
            (
                "sklearn.cross_decomposition",
                "py:module",
                "api/sklearn.cross_decomposition.html#module-sklearn.cross_decomposition",
            ),
            (
                "sklearn.datasets",
                "py:module",
                "api/sklearn.datasets.html#module-sklearn.datasets",
            ),
            (
                "sklearn.datasets.load_digits",
                "py:function",
                SK + "sklearn.datasets.load_digits.html",
            ),
            ("sklearn.utils.Bunch", "py:class", SK + "sklearn.utils.Bunch.html"),
            (
                "sklearn.utils.validation.check_array",
                "py:function",
                SK + "sklearn.utils.check_array.html",
            ),
            (
                "sklearn.utils.check_array",
                "py:function",
                SK + "sklearn.utils.check_array.html",
            ),
            (
                "sklearn.metrics.RocCurveDisplay",
                "py:class",
                SK + "sklearn.metrics.RocCurveDisplay.html",
            ),
            (
                "sklearn.metrics.make_scorer",
                "py:function",
                SK + "sklearn.metrics.make_scorer.html",
            ),
            (
                "sklearn.exceptions.ConvergenceWarning",
                "py:class",
                SK + "sklearn.exceptions.ConvergenceWarning.html",
            ),
            (
                "sklearn.base.BaseEstimator",
                "py:class",
                SK + "sklearn.base.BaseEstimator.html",
            ),
            (
                "sklearn.base.TransformerMixin",
                "py:class",
                SK + "sklearn.base.TransformerMixin.html",
            ),
            ("sklearn.base.clone", "py:function", SK + "sklearn.base.clone.html"),
        ],
    ),
    "torch": (
        "stable",
        [
            ("torch.compile", "py:function", TORCH + "torch.compile.html"),
            ("torch.device", "py:class", "tensor_attributes.html#torch.device"),
            ("torch.dtype", "py:class", "tensor_attributes.html#torch.dtype"),
            ("torch.Tensor", "py:class", "tensors.html#torch.Tensor"),
            ("torch.manual_seed", "py:function", TORCH + "torch.manual_seed.html"),
            ("torch.nn.Module", "py:class", TORCH + "torch.nn.Module.html"),
            ("torch.nn.Linear", "py:class", TORCH + "torch.nn.Linear.html"),
            ("torch.nn.Sequential", "py:class", TORCH + "torch.nn.Sequential.html"),
            ("torch.nn.Conv2d", "py:class", TORCH + "torch.nn.Conv2d.html"),
            ("torch.nn.ReLU", "py:class", TORCH + "torch.nn.ReLU.html"),
            ("torch.nn.AvgPool2d", "py:class", TORCH + "torch.nn.AvgPool2d.html"),
            ("torch.nn.Flatten", "py:class", TORCH + "torch.nn.Flatten.html"),
            ("torch.optim.AdamW", "py:class", TORCH + "torch.optim.AdamW.html"),
            ("torch.autocast", "py:class", "amp.html#torch.autocast"),
        ],
    ),
    "transformers": (
        "main",
        [
            (
                "transformers.AutoModel",
                "py:class",
                "model_doc/auto#transformers.AutoModel",
            ),
            (
                "transformers.AutoTokenizer",
                "py:class",
                "model_doc/auto#transformers.AutoTokenizer",
            ),
            (
                "transformers.AutoImageProcessor",
                "py:class",
                "model_doc/auto#transformers.AutoImageProcessor",
            ),
            (
                "transformers.AutoFeatureExtractor",
                "py:class",
                "model_doc/auto#transformers.AutoFeatureExtractor",
            ),
        ],
    ),
}


def inventory_bytes(project, version, entries):
    """The bytes of one ``objects.inv`` (Sphinx inventory version 2)."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    # "-" as display name: the same as the object's name
    lines = "".join(f"{name} {role} 1 {uri} -\n" for name, role, uri in sorted(entries))
    return header.encode() + zlib.compress(lines.encode(), 9)


def main():
    for project, (version, entries) in INVENTORIES.items():
        path = HERE / f"{project}.inv"
        path.write_bytes(inventory_bytes(project, version, entries))
        print(f"{path.name}: {len(entries)} objects")


if __name__ == "__main__":
    main()

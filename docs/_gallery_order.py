"""The order of the examples gallery: a newcomer's path, not file names."""

from pathlib import Path

ORDER = [
    "plot_quickstart.py",
    "plot_openmoji_demo.py",
    "plot_pipeline_encoders.py",
    "plot_training_history.py",
    "plot_grid_search.py",
    "plot_data_efficiency.py",
    "plot_one_sided_binding.py",
]


class NewcomerOrder:
    """Sort key of sphinx-gallery's ``within_subsection_order``.

    Examples in ``ORDER`` come first, in that order; any other after them, by
    file name.
    """

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __repr__(self):
        return f"<{type(self).__name__}>"

    def __call__(self, filename):
        name = Path(filename).name
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

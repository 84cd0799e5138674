"""Plots in scikit-learn's Display style: recall@k curves, training history,
and a retrieval gallery.

matplotlib is optional (``pip install skfusemix[plot]``) and imported only
inside the functions that draw, so importing this module costs nothing.

Displays follow :class:`sklearn.metrics.RocCurveDisplay`: compute once with
``from_estimator`` / ``from_predictions`` (or build one from precomputed
values), draw with :meth:`plot`, which returns the display with ``ax_``,
``figure_`` and ``lines_`` set.  Pass ``ax=`` to draw several models on one
axes.
"""

import numbers
import textwrap

import numpy as np

from ._data import l2_normalize
from .metrics import retrieval_ranks

__all__ = ["RecallAtKDisplay", "TrainingHistoryDisplay", "plot_retrievals"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib: pip install 'skfusemix[plot]'."
        ) from exc
    return plt


def _get_ax(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _check_ks(ks, n_items):
    if ks is None:
        return np.arange(1, min(50, n_items) + 1)
    ks = np.asarray(ks)
    if (
        ks.ndim != 1
        or ks.size == 0
        or not np.issubdtype(ks.dtype, np.integer)
        or (ks < 1).any()
    ):
        raise ValueError(f"ks must be a 1-D sequence of positive integers, got {ks!r}.")
    return np.sort(ks)


class RecallAtKDisplay:
    """Recall@k curves of cross-modal retrieval, both directions.

    The x->y curve (e.g. image->text) is solid, the y->x curve dashed, both
    in one colour, so several models can share an axes; with many models,
    draw one direction per axes (``plot(direction="x2y")``).  Recall follows
    :func:`skfusemix.metrics.retrieval_report`: a query is a hit at k when
    any correct partner is in its top k.

    Build it with :meth:`from_estimator` or :meth:`from_predictions`, or
    from precomputed values and then call :meth:`plot`.

    Parameters
    ----------
    ks : array-like of int
        The cut-offs k.
    recall_x2y : array-like of float
        Recall@k of x->y queries for each k, in [0, 1].
    recall_y2x : array-like of float
        Recall@k of y->x queries for each k, in [0, 1].
    name : str, default=None
        Name of the model, used in the legend.
    n_items : int, default=None
        Number of distinct x items ranked, for the chance line of
        :meth:`plot` (set by :meth:`from_predictions`).

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the curves.
    figure_ : matplotlib Figure
        Figure containing the curves.
    lines_ : list of matplotlib Line2D
        The x->y curve then the y->x curve (only the one drawn when
        ``direction`` is not ``"both"``).
    chance_line_ : matplotlib Line2D or None
        The chance line, when drawn.

    See Also
    --------
    skfusemix.metrics.retrieval_report : Recall@1/5/10 as numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.plotting import RecallAtKDisplay
    >>> rng = np.random.RandomState(0)
    >>> Sx = rng.normal(size=(30, 4))
    >>> Sy = Sx + 0.5 * rng.normal(size=(30, 4))
    >>> display = RecallAtKDisplay.from_predictions(Sx, Sy, name="noisy copy")
    >>> display.ks.tolist()[:3], float(display.recall_x2y[-1])
    ([1, 2, 3], 1.0)
    >>> len(display.lines_)
    2
    """

    def __init__(self, *, ks, recall_x2y, recall_y2x, name=None, n_items=None):
        self.ks = np.asarray(ks)
        self.recall_x2y = np.asarray(recall_x2y, dtype=float)
        self.recall_y2x = np.asarray(recall_y2x, dtype=float)
        self.name = name
        self.n_items = n_items
        if not (self.ks.shape == self.recall_x2y.shape == self.recall_y2x.shape):
            raise ValueError(
                "ks, recall_x2y and recall_y2x must have the same length, got "
                f"{self.ks.shape}, {self.recall_x2y.shape}, {self.recall_y2x.shape}."
            )

    def plot(
        self,
        ax=None,
        *,
        name=None,
        log_x=False,
        direction="both",
        chance=False,
        **kwargs,
    ):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        name : str, default=None
            Legend name, overriding the one given at construction.
        log_x : bool, default=False
            Logarithmic k axis, ticked at 1, 2, 5, 10, 20, 50, ...
        direction : {"both", "x2y", "y2x"}, default="both"
            Which curves to draw: both (x->y solid, y->x dashed) or one
            (solid, labelled with the name only).
        chance : bool, default=False
            Also draw chance, ``min(1, k / n_items)`` (a random ranking of
            ``n_items`` items with one right answer), dotted grey; needs
            ``n_items``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for the curves
            (e.g. ``color``, ``linewidth``).

        Returns
        -------
        display : RecallAtKDisplay
            The display, with ``ax_``, ``figure_``, ``lines_`` and
            ``chance_line_`` set.
        """
        if direction not in ("both", "x2y", "y2x"):
            raise ValueError(
                f"direction must be 'both', 'x2y' or 'y2x', got {direction!r}."
            )
        if chance and self.n_items is None:
            raise ValueError(
                "chance=True needs n_items (the number of items ranked); build "
                "the display with from_predictions or pass n_items."
            )
        ax = _get_ax(ax)
        name = self.name if name is None else name
        prefix = f"{name} " if name else ""
        kwargs = dict(kwargs)
        for key in ("linestyle", "ls"):  # the two directions are told by style
            kwargs.pop(key, None)
        lines = []
        if direction == "both":
            (line,) = ax.plot(
                self.ks, self.recall_x2y, linestyle="-", label=f"{prefix}x→y", **kwargs
            )
            kwargs["color"] = line.get_color()
            lines.append(line)
            (line,) = ax.plot(
                self.ks, self.recall_y2x, linestyle="--", label=f"{prefix}y→x", **kwargs
            )
            lines.append(line)
        else:
            recall = self.recall_x2y if direction == "x2y" else self.recall_y2x
            label = name or ("x→y" if direction == "x2y" else "y→x")
            (line,) = ax.plot(self.ks, recall, linestyle="-", label=label, **kwargs)
            lines.append(line)
        self.chance_line_ = None
        if chance:
            (self.chance_line_,) = ax.plot(
                self.ks,
                np.minimum(1.0, self.ks / self.n_items),
                linestyle=":",
                color="0.4",
                label="chance",
            )
        if log_x:
            _log_k_axis(ax, self.ks)
        ax.set_xlabel("k")
        ax.set_ylabel("recall@k")
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        self.ax_, self.figure_ = ax, ax.figure
        self.lines_ = lines
        return self

    @classmethod
    def from_estimator(
        cls, estimator, X, y, *, groups=None, ks=None, name=None, ax=None, log_x=False
    ):
        """Embed ``X`` and ``y`` with a fitted aligner and plot recall@k.

        Parameters
        ----------
        estimator : fitted aligner
            Anything with ``transform`` (modality x) and ``transform_y``
            (modality y), e.g. :class:`~skfusemix.FuseMixAligner`.
        X : array-like of shape (n_samples, n_features)
            Modality x (identical rows are one item).
        y : array-like of shape (n_samples, n_features_y)
            Modality y, row ``i`` paired with row ``i`` of ``X``.
        groups : array-like of shape (n_samples,), default=None
            Item of each row; by default identical embedded rows of ``X`` are
            one item.
        ks : array-like of int, default=None
            Cut-offs; by default ``1 .. min(50, n_items)``.
        name : str, default=None
            Legend name; the estimator's class name by default.
        ax : matplotlib Axes, default=None
            Axes to draw on.
        log_x : bool, default=False
            Logarithmic k axis.

        Returns
        -------
        display : RecallAtKDisplay

        Examples
        --------
        >>> from skfusemix import CCAAligner
        >>> from skfusemix.datasets import make_paired_latents
        >>> from skfusemix.plotting import RecallAtKDisplay
        >>> Zx, Zy = make_paired_latents(n_samples=200, random_state=0)
        >>> cca = CCAAligner(n_components=8).fit(Zx, Zy)
        >>> display = RecallAtKDisplay.from_estimator(cca, Zx, Zy, ks=[1, 5, 10])
        >>> display.lines_[0].get_label()
        'CCAAligner x→y'
        """
        if not (hasattr(estimator, "transform") and hasattr(estimator, "transform_y")):
            raise TypeError(
                "estimator must be a fitted aligner with transform and "
                f"transform_y, got {type(estimator).__name__}."
            )
        name = type(estimator).__name__ if name is None else name
        return cls.from_predictions(
            estimator.transform(X),
            estimator.transform_y(y),
            groups=groups,
            ks=ks,
            name=name,
            ax=ax,
            log_x=log_x,
        )

    @classmethod
    def from_predictions(
        cls, Sx, Sy, *, groups=None, ks=None, name=None, ax=None, log_x=False
    ):
        """Plot recall@k of embeddings already in the shared space.

        Parameters
        ----------
        Sx : array-like of shape (n_samples, n_components)
            Embeddings of modality x.
        Sy : array-like of shape (n_samples, n_components)
            Embeddings of modality y, row ``i`` paired with row ``i`` of
            ``Sx``.
        groups : array-like of shape (n_samples,), default=None
            Item of each row; by default identical rows of ``Sx`` are one
            item.
        ks : array-like of int, default=None
            Cut-offs; by default ``1 .. min(50, n_items)``.
        name : str, default=None
            Legend name.
        ax : matplotlib Axes, default=None
            Axes to draw on.
        log_x : bool, default=False
            Logarithmic k axis.

        Returns
        -------
        display : RecallAtKDisplay

        Examples
        --------
        >>> import numpy as np
        >>> from skfusemix.plotting import RecallAtKDisplay
        >>> S = np.eye(5)
        >>> RecallAtKDisplay.from_predictions(S, S).recall_y2x.tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0]
        """
        x2y, y2x = retrieval_ranks(Sx, Sy, groups=groups)  # ranks once, every k
        ks = _check_ks(ks, x2y.size)
        recall_x2y = (x2y[None, :] <= ks[:, None]).mean(axis=1)
        recall_y2x = (y2x[None, :] <= ks[:, None]).mean(axis=1)
        display = cls(
            ks=ks,
            recall_x2y=recall_x2y,
            recall_y2x=recall_y2x,
            name=name,
            n_items=x2y.size,
        )
        return display.plot(ax=ax, log_x=log_x)


def _log_k_axis(ax, ks):
    """A log k axis ticked at 1, 2, 5, 10, 20, 50, ... in plain numbers."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    ax.set_xscale("log")
    top = max(int(np.max(ks)), 1)
    ticks = [
        m * 10**e
        for e in range(len(str(top)) + 1)
        for m in (1, 2, 5)
        if m * 10**e <= top
    ]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())


class TrainingHistoryDisplay:
    """Training curves of a fitted :class:`~skfusemix.FuseMixAligner`.

    The mean loss of each epoch on the left axis, the temperature on a second
    y axis (dashed, right), and, when the history holds validation scores
    (``val_score``, optionally at epochs ``val_epoch``), those in a panel of
    their own.

    Parameters
    ----------
    history : dict of list
        The estimator's ``history_``: ``epoch``, ``loss``, ``temperature``,
        optionally ``val_score`` and ``val_epoch``.
    name : str, default=None
        Name of the model, used in the titles.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the loss.
    ax_temperature_ : matplotlib Axes
        Twin axes with the temperature.
    ax_val_ : matplotlib Axes or None
        Axes with the validation score, None without validation scores.
    figure_ : matplotlib Figure
        The figure.
    lines_ : dict of matplotlib Line2D
        ``"loss"``, ``"temperature"`` and, when present, ``"val_score"``.

    Examples
    --------
    >>> from skfusemix.plotting import TrainingHistoryDisplay
    >>> history = {"epoch": [1, 2, 3], "loss": [2.0, 1.5, 1.2],
    ...            "temperature": [0.07, 0.06, 0.055]}
    >>> display = TrainingHistoryDisplay(history).plot()
    >>> sorted(display.lines_), display.ax_val_ is None
    (['loss', 'temperature'], True)
    """

    def __init__(self, history, name=None):
        if not isinstance(history, dict) or "loss" not in history:
            raise ValueError(
                "history must be a dict with at least a 'loss' list (an "
                "estimator's history_)."
            )
        self.history = history
        self.name = name

    def _val_points(self):
        scores = self.history.get("val_score")
        if scores is None or len(scores) == 0:
            return None
        scores = np.asarray([np.nan if s is None else s for s in scores], dtype=float)
        epochs = self.history.get("val_epoch")
        if epochs is None:
            epochs = self._epochs()
            if len(epochs) != len(scores):
                epochs = np.arange(1, len(scores) + 1)
        epochs = np.asarray(epochs, dtype=float)
        keep = np.isfinite(scores)
        return epochs[keep], scores[keep]

    def _epochs(self):
        loss = self.history["loss"]
        return np.asarray(self.history.get("epoch", np.arange(1, len(loss) + 1)))

    def plot(self, ax=None, *, name=None):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes or pair of Axes, default=None
            Axes for the loss (and temperature); with validation scores a
            pair ``(ax_loss, ax_val)`` puts them on the second one.  When
            None, a figure is created with one panel, or two side by side
            when there are validation scores.  A single Axes with validation
            scores gets them on a third, offset y axis.
        name : str, default=None
            Title prefix, overriding the one given at construction.

        Returns
        -------
        display : TrainingHistoryDisplay
            The display, with ``ax_``, ``ax_temperature_``, ``ax_val_``,
            ``figure_`` and ``lines_`` set.
        """
        name = self.name if name is None else name
        val = self._val_points()
        ax_val = None
        if ax is None:
            plt = _pyplot()
            if val is None:
                fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
            else:
                fig, (ax, ax_val) = plt.subplots(
                    1, 2, figsize=(11, 4), layout="constrained"
                )
        elif isinstance(ax, (list, tuple, np.ndarray)):
            axes = list(np.ravel(ax))
            if len(axes) != 2:
                raise ValueError(f"ax must be one Axes or a pair, got {len(axes)}.")
            ax, ax_val = axes

        epochs = self._epochs()
        lines = {}
        (lines["loss"],) = ax.plot(
            epochs, self.history["loss"], color="C0", marker=".", label="loss"
        )
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (symmetric InfoNCE)")
        ax.grid(True, alpha=0.3)
        ax_t = ax.twinx()
        if "temperature" in self.history:
            (lines["temperature"],) = ax_t.plot(
                epochs,
                self.history["temperature"],
                color="C1",
                linestyle="--",
                label="temperature",
            )
        ax_t.set_ylabel("temperature", color="C1")
        ax_t.tick_params(axis="y", colors="C1")
        ax.set_title(f"{name}: training" if name else "Training")

        own_panel = ax_val is not None
        if val is not None:
            if not own_panel:  # a single Axes: third y axis, offset to the right
                ax_val = ax.twinx()
                ax_val.spines["right"].set_position(("axes", 1.18))
                ax_val.set_ylabel("validation score", color="C2")
                ax_val.tick_params(axis="y", colors="C2")
            else:
                ax_val.set_xlabel("epoch")
                ax_val.set_ylabel("validation score")
                ax_val.grid(True, alpha=0.3)
                ax_val.set_title(f"{name}: validation" if name else "Validation")
                ax_val.set_xlim(ax.get_xlim())
            (lines["val_score"],) = ax_val.plot(
                *val, color="C2", marker="o", label="validation score"
            )
        # The loss axes' legend names every curve drawn over it.
        handles = [
            line for key, line in lines.items() if key != "val_score" or not own_panel
        ]
        ax.legend(handles, [h.get_label() for h in handles], loc="best")

        self.ax_, self.ax_temperature_, self.ax_val_ = ax, ax_t, ax_val
        self.figure_, self.lines_ = ax.figure, lines
        return self

    @classmethod
    def from_estimator(cls, estimator, *, name=None, ax=None):
        """Plot the ``history_`` of a fitted estimator.

        Parameters
        ----------
        estimator : fitted estimator
            An estimator with a ``history_`` dict, e.g. a fitted
            :class:`~skfusemix.FuseMixAligner`.
        name : str, default=None
            Title prefix; the estimator's class name by default.
        ax : matplotlib Axes or pair of Axes, default=None
            Where to draw, see :meth:`plot`.

        Returns
        -------
        display : TrainingHistoryDisplay

        Examples
        --------
        >>> from skfusemix import FuseMixAligner
        >>> from skfusemix.datasets import make_paired_latents
        >>> from skfusemix.plotting import TrainingHistoryDisplay
        >>> Zx, Zy = make_paired_latents(n_samples=200, random_state=0)
        >>> aligner = FuseMixAligner(n_components=16, n_layers=1, batch_size=50,
        ...                          max_epochs=5, random_state=0).fit(Zx, Zy)
        >>> display = TrainingHistoryDisplay.from_estimator(aligner)
        >>> len(display.lines_["loss"].get_xdata())
        5
        """
        history = getattr(estimator, "history_", None)
        if history is None:
            raise ValueError(
                f"{type(estimator).__name__} has no history_: fit it first "
                "(only estimators trained by gradient descent record one)."
            )
        name = type(estimator).__name__ if name is None else name
        return cls(history, name=name).plot(ax=ax)


def _as_positive_sets(positives, n_queries):
    if positives is None:
        return None
    if len(positives) != n_queries:
        raise ValueError(
            f"positives must have one entry per query ({n_queries}), got "
            f"{len(positives)}."
        )
    sets = []
    for p in positives:
        if isinstance(p, numbers.Integral):
            sets.append({int(p)})
        else:
            sets.append({int(i) for i in p})
    return sets


def plot_retrievals(
    query_labels,
    Sq,
    Sg,
    gallery_images,
    *,
    k=5,
    positives=None,
    gallery_labels=None,
    figsize=None,
    caption=True,
):
    """Show the top-k gallery images retrieved for a few text queries.

    One row per query: the query text on the left, then the ``k`` gallery
    images with the highest cosine similarity to it, best first, each titled
    with its rank and cosine similarity.  When ``positives`` is given,
    correct hits get a green frame.  A caption under the figure says so
    (``caption=False`` leaves it out).

    Parameters
    ----------
    query_labels : sequence of str of length n_queries
        Text shown for each query (e.g. the caption).
    Sq : array-like of shape (n_queries, n_components)
        Query embeddings (e.g. ``aligner.transform_y(captions)``).
    Sg : array-like of shape (n_gallery, n_components)
        Gallery embeddings (e.g. ``aligner.transform(images)``).
    gallery_images : sequence of length n_gallery
        The gallery's images: PIL images or arrays of shape (H, W) or
        (H, W, C).
    k : int, default=5
        Results shown per query.
    positives : sequence of length n_queries, default=None
        For each query, the index of its correct gallery item or a
        collection of correct indices.
    gallery_labels : sequence of str of length n_gallery, default=None
        Short text shown under each retrieved image.
    figsize : tuple of float, default=None
        Figure size; by default ``(2 * (k + 1), 2 * n_queries)``.
    caption : bool, default=True
        Explain the figure under it: what a row is, the numbers above the
        images and (with ``positives``) the green frame.

    Returns
    -------
    figure : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skfusemix.plotting import plot_retrievals
    >>> colours = np.eye(3)  # a red, a green and a blue image
    >>> images = [np.ones((8, 8, 3)) * c for c in colours]
    >>> fig = plot_retrievals(["red", "blue"], colours[[0, 2]], colours, images,
    ...                       k=2, positives=[0, 2])
    >>> len(fig.axes)
    6
    """
    plt = _pyplot()
    Sq = np.asarray(Sq, dtype=float)
    Sg = np.asarray(Sg, dtype=float)
    if Sq.ndim != 2 or Sg.ndim != 2 or Sq.shape[1] != Sg.shape[1]:
        raise ValueError(
            "Sq and Sg must be 2-D with the same number of columns, got shapes "
            f"{Sq.shape} and {Sg.shape}."
        )
    n_queries, n_gallery = Sq.shape[0], Sg.shape[0]
    if len(query_labels) != n_queries:
        raise ValueError(
            f"query_labels has {len(query_labels)} entries for {n_queries} queries."
        )
    if len(gallery_images) != n_gallery:
        raise ValueError(
            f"gallery_images has {len(gallery_images)} entries for {n_gallery} "
            "gallery embeddings."
        )
    if gallery_labels is not None and len(gallery_labels) != n_gallery:
        raise ValueError(
            f"gallery_labels has {len(gallery_labels)} entries for {n_gallery} "
            "gallery embeddings."
        )
    if not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    k = min(int(k), n_gallery)
    positive_sets = _as_positive_sets(positives, n_queries)

    sim = l2_normalize(Sq) @ l2_normalize(Sg).T
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]

    if figsize is None:
        figsize = (2.0 * (k + 1), 2.0 * n_queries + 0.3)
    fig, axes = plt.subplots(
        n_queries, k + 1, figsize=figsize, squeeze=False, layout="constrained"
    )
    for q in range(n_queries):
        text_ax = axes[q, 0]
        text_ax.axis("off")
        text_ax.text(
            0.98,
            0.5,
            _wrap(str(query_labels[q]), 22),
            ha="right",
            va="center",
            fontsize=10,
            transform=text_ax.transAxes,
        )
        for r, g in enumerate(top[q]):
            ax = axes[q, r + 1]
            image = np.asarray(gallery_images[g])
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            title = f"#{r + 1}  {sim[q, g]:.2f}"
            ax.set_title(title, fontsize=8)
            if gallery_labels is not None:
                ax.set_xlabel(_wrap(str(gallery_labels[g]), 18), fontsize=7)
            hit = positive_sets is not None and int(g) in positive_sets[q]
            for spine in ax.spines.values():
                spine.set_visible(hit)
                if hit:
                    spine.set_edgecolor("tab:green")
                    spine.set_linewidth(4)
    if caption:
        text = (
            f"Each row: a query (left) and the {k} gallery images closest to it, "
            "best first. Above each image: its rank and cosine similarity to the "
            "query."
        )
        if positive_sets is not None:
            text += " Green frame: a correct match."
        fig.supxlabel(_wrap(text, int(12 * figsize[0])), fontsize=9)
    return fig


def _wrap(text, width):
    return "\n".join(textwrap.wrap(text, width)) or text

"""Displays: the values they plot and the artists they create (Agg backend)."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skfusemix import CCAAligner, retrieval_report  # noqa: E402
from skfusemix.datasets import make_paired_latents  # noqa: E402
from skfusemix.plotting import (  # noqa: E402
    RecallAtKDisplay,
    TrainingHistoryDisplay,
    plot_retrievals,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted():
    Zx, Zy, groups = make_paired_latents(
        n_samples=120, n_captions=3, noise=1.0, return_groups=True, random_state=0
    )
    return CCAAligner(n_components=6).fit(Zx, Zy), Zx, Zy, groups


def test_recall_curve_matches_retrieval_report(fitted):
    cca, Zx, Zy, groups = fitted
    display = RecallAtKDisplay.from_estimator(cca, Zx, Zy, groups=groups)
    report = retrieval_report(
        cca.transform(Zx), cca.transform_y(Zy), groups=groups, ks=(1, 5, 10)
    )
    assert display.ks.tolist() == list(range(1, 51))
    assert 0 < report["x2y_R@1"] < 1  # a curve with something to show
    for k in (1, 5, 10):
        i = k - 1
        assert display.recall_x2y[i] == pytest.approx(report[f"x2y_R@{k}"])
        assert display.recall_y2x[i] == pytest.approx(report[f"y2x_R@{k}"])
    # The plotted data is the computed data.
    np.testing.assert_allclose(display.lines_[0].get_ydata(), display.recall_x2y)
    np.testing.assert_allclose(display.lines_[1].get_ydata(), display.recall_y2x)
    assert np.all(np.diff(display.recall_x2y) >= 0)


def test_default_ks_capped_by_number_of_items():
    S = np.eye(7)
    display = RecallAtKDisplay.from_predictions(S, S)
    assert display.ks.tolist() == list(range(1, 8))
    np.testing.assert_array_equal(display.recall_x2y, 1.0)


def test_recall_artists_and_several_models_on_one_axes(fitted):
    cca, Zx, Zy, groups = fitted
    fig, ax = plt.subplots()
    a = RecallAtKDisplay.from_estimator(cca, Zx, Zy, ks=[1, 5, 10], ax=ax)
    b = RecallAtKDisplay.from_predictions(
        cca.transform(Zx), cca.transform_y(Zy)[::-1], name="shuffled", ax=ax, log_x=True
    )
    assert a.ax_ is b.ax_ is ax and a.figure_ is fig
    assert len(ax.get_lines()) == 4
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == [
        "CCAAligner x→y",
        "CCAAligner y→x",
        "shuffled x→y",
        "shuffled y→x",
    ]
    assert a.lines_[0].get_linestyle() == "-" and a.lines_[1].get_linestyle() == "--"
    assert a.lines_[0].get_color() == a.lines_[1].get_color()
    assert a.lines_[0].get_color() != b.lines_[0].get_color()
    assert ax.get_xscale() == "log"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == set(labels)


def test_recall_display_from_values_and_kwargs():
    display = RecallAtKDisplay(ks=[1, 2], recall_x2y=[0.5, 1.0], recall_y2x=[0.25, 0.5])
    display.plot(color="red", linestyle=":")
    assert [line.get_linestyle() for line in display.lines_] == ["-", "--"]
    assert display.lines_[1].get_color() == "red"
    with pytest.raises(ValueError, match="same length"):
        RecallAtKDisplay(ks=[1, 2], recall_x2y=[0.5], recall_y2x=[0.25, 0.5])
    with pytest.raises(ValueError, match="positive integers"):
        RecallAtKDisplay.from_predictions(np.eye(3), np.eye(3), ks=[0, 1])
    with pytest.raises(TypeError, match="transform_y"):
        RecallAtKDisplay.from_estimator(object(), np.eye(3), np.eye(3))


HISTORY = {
    "epoch": [1, 2, 3, 4],
    "loss": [3.0, 2.0, 1.5, 1.4],
    "temperature": [0.07, 0.06, 0.05, 0.05],
}


def test_training_history_without_validation():
    display = TrainingHistoryDisplay(HISTORY, name="m").plot()
    assert set(display.lines_) == {"loss", "temperature"}
    assert display.ax_val_ is None
    np.testing.assert_allclose(display.lines_["loss"].get_ydata(), HISTORY["loss"])
    np.testing.assert_allclose(
        display.lines_["temperature"].get_ydata(), HISTORY["temperature"]
    )
    assert display.ax_temperature_ is not display.ax_
    assert display.ax_.get_title() == "m: training"


def test_training_history_with_validation_panel_and_single_axes():
    history = dict(HISTORY, val_score=[0.1, None, 0.3], val_epoch=[1, 2, 4])
    display = TrainingHistoryDisplay(history).plot()
    assert len(display.figure_.axes) == 3  # loss, its temperature twin, validation
    np.testing.assert_allclose(display.lines_["val_score"].get_xdata(), [1, 4])
    np.testing.assert_allclose(display.lines_["val_score"].get_ydata(), [0.1, 0.3])

    fig, ax = plt.subplots()
    history = dict(HISTORY, val_score=[0.1, 0.2, 0.3, 0.35])  # one per epoch
    display = TrainingHistoryDisplay(history).plot(ax=ax)
    assert display.ax_ is ax and display.ax_val_ is not None
    np.testing.assert_allclose(display.lines_["val_score"].get_xdata(), [1, 2, 3, 4])

    fig, axes = plt.subplots(1, 2)
    display = TrainingHistoryDisplay(history).plot(ax=axes)
    assert display.ax_val_ is axes[1]


def test_training_history_from_estimator():
    from skfusemix import FuseMixAligner

    Zx, Zy = make_paired_latents(n_samples=64, random_state=0)
    aligner = FuseMixAligner(
        n_components=8, n_layers=1, batch_size=16, max_epochs=3, random_state=0
    ).fit(Zx, Zy)
    display = TrainingHistoryDisplay.from_estimator(aligner)
    np.testing.assert_allclose(
        display.lines_["loss"].get_ydata(), aligner.history_["loss"]
    )
    assert "FuseMixAligner" in display.ax_.get_title()
    with pytest.raises(ValueError, match="history_"):
        TrainingHistoryDisplay.from_estimator(CCAAligner())
    with pytest.raises(ValueError, match="loss"):
        TrainingHistoryDisplay({"epoch": [1]})


def test_plot_retrievals_orders_results_and_frames_hits():
    from PIL import Image

    rng = np.random.RandomState(0)
    Sg = rng.normal(size=(6, 4))
    images = [Image.new("RGB", (10, 10), (40 * i, 0, 0)) for i in range(6)]
    images[1] = np.zeros((10, 10))  # grayscale array works too
    Sq = Sg[[3, 1]] + 0.01 * rng.normal(size=(2, 4))
    fig = plot_retrievals(
        ["query three", "query one"],
        Sq,
        Sg,
        images,
        k=3,
        positives=[3, {0, 5}],
        gallery_labels=[f"item {i}" for i in range(6)],
    )
    axes = np.array(fig.axes).reshape(2, 4)
    assert axes[0, 0].texts[0].get_text() == "query three"
    assert axes[0, 1].get_xlabel() == "item 3"  # best match first
    assert axes[1, 1].get_xlabel() == "item 1"
    assert axes[0, 1].get_title().startswith("#1")
    assert axes[0, 1].spines["left"].get_visible()  # correct hit: green frame
    assert not axes[1, 1].spines["left"].get_visible()  # wrong result: no frame
    assert len(axes[0, 1].images) == 1
    # The caption explains the numbers and the frame.
    caption = " ".join(fig.get_supxlabel().split())
    assert "rank and cosine similarity" in caption and "Green frame" in caption
    fig = plot_retrievals(["query three"], Sq[:1], Sg, images, k=2)
    assert "Green frame" not in fig.get_supxlabel()
    fig = plot_retrievals(["query three"], Sq[:1], Sg, images, k=2, caption=False)
    assert fig.get_supxlabel() == ""


def test_plot_retrievals_validates_inputs():
    S = np.eye(3)
    images = [np.zeros((2, 2, 3))] * 3
    with pytest.raises(ValueError, match="query_labels"):
        plot_retrievals(["a"], S, S, images)
    with pytest.raises(ValueError, match="gallery_images"):
        plot_retrievals(["a", "b", "c"], S, S, images[:2])
    with pytest.raises(ValueError, match="same number of columns"):
        plot_retrievals(["a", "b", "c"], S, S[:, :2], images)
    with pytest.raises(ValueError, match="positives"):
        plot_retrievals(["a", "b", "c"], S, S, images, positives=[0])


def test_recall_one_direction_per_axes_with_chance_and_plain_k_ticks(fitted):
    cca, Zx, Zy, groups = fitted
    display = RecallAtKDisplay.from_estimator(cca, Zx, Zy, groups=groups, name="cca")
    assert display.n_items == 120
    fig, (ax1, ax2) = plt.subplots(1, 2)
    display.plot(ax1, direction="x2y", chance=True, log_x=True)
    np.testing.assert_allclose(
        display.chance_line_.get_ydata(), np.minimum(1, display.ks / 120)
    )
    display.plot(ax2, direction="y2x")
    assert display.chance_line_ is None
    assert [line.get_label() for line in ax1.get_lines()] == ["cca", "chance"]
    np.testing.assert_allclose(ax1.get_lines()[0].get_ydata(), display.recall_x2y)
    np.testing.assert_allclose(ax2.get_lines()[0].get_ydata(), display.recall_y2x)
    assert len(display.lines_) == 1
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax1.get_xticklabels()]
    assert ticks == ["1", "2", "5", "10", "20", "50"]
    with pytest.raises(ValueError, match="direction"):
        display.plot(direction="up")
    with pytest.raises(ValueError, match="n_items"):
        RecallAtKDisplay(ks=[1], recall_x2y=[1], recall_y2x=[1]).plot(chance=True)

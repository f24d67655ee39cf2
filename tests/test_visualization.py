"""plot_predictions on studies the tests make: what each trial becomes on the figure."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
import math
import sys
from typing import Any
from typing import cast
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_srp import SRPPruner
from optuna_srp.visualization import plot_predictions as plotly_predictions
from optuna_srp.visualization.matplotlib import plot_predictions
from tests._synthetic import add_complete_trials
from tests._synthetic import N_STEPS
from tests._synthetic import objective


if TYPE_CHECKING:
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D


@pytest.fixture(autouse=True)
def _close_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    if "plotly" in request.node.name:
        pytest.importorskip("plotly", reason="the Plotly variant needs plotly")
        yield
        return
    matplotlib = pytest.importorskip("matplotlib", reason="the plots need matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def _gids(ax: object, prefix: str) -> set[str]:
    artists = [*ax.lines, *ax.collections]  # type: ignore[attr-defined]
    return {a.get_gid() for a in artists if (a.get_gid() or "").startswith(prefix)}


def _xdata(line: Line2D) -> Sequence[float]:
    """``line``'s x values (Matplotlib types them as any array-like; a list or array here)."""
    return cast(Sequence[float], line.get_xdata())


def _ydata(line: Line2D) -> Sequence[float]:
    """``line``'s y values (Matplotlib types them as any array-like; a list or array here)."""
    return cast(Sequence[float], line.get_ydata())


@pytest.fixture(scope="module")
def srp_study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        # Few start-up trials: the study shows trials stopped at a start-up rung and by the models.
        pruner=SRPPruner(n_startup_trials=4, seed=0),
    )
    study.optimize(objective, n_trials=60)
    return study


def _explained(pruned: list[FrozenTrial]) -> list[FrozenTrial]:
    """The pruned trials the models decided on (with a prediction); the others were stopped at
    a start-up rung, before the models were ready, and have none."""
    explained = [t for t in pruned if "srp:predicted_value" in t.user_attrs]
    rungs = [t for t in pruned if t not in explained]
    assert rungs  # the fixture's study shows both kinds
    assert all(t.user_attrs["srp:decision"] == "pruned:rung" for t in rungs)
    return explained


def test_every_curve_pruned_step_and_prediction_is_drawn(srp_study: optuna.Study) -> None:
    ax = plot_predictions(srp_study, target_name="accuracy")
    trials = srp_study.get_trials(deepcopy=False)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    explained = _explained(pruned)
    assert len(explained) >= 5  # else this test shows nothing

    assert _gids(ax, "trial-") == {f"trial-{t.number}" for t in trials}
    assert _gids(ax, "pruned-") == {f"pruned-{t.number}" for t in pruned}
    assert _gids(ax, "prediction-") == {f"prediction-{t.number}" for t in explained}
    assert _gids(ax, "link-") == {f"link-{t.number}" for t in explained}
    for t in explained:
        (marker,) = [line for line in ax.lines if line.get_gid() == f"prediction-{t.number}"]
        assert _xdata(marker)[0] == t.last_step
        assert _ydata(marker)[0] == pytest.approx(t.user_attrs["srp:predicted_value"])
        (cross,) = [line for line in ax.lines if line.get_gid() == f"pruned-{t.number}"]
        assert t.last_step is not None
        assert _ydata(cross)[0] == t.intermediate_values[t.last_step]
    (best,) = [line for line in ax.lines if line.get_gid() == "best"]
    assert _ydata(best)[0] == srp_study.best_value
    assert ax.get_ylabel() == "accuracy"
    legend = ax.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert f"pruned ({len(pruned)})" in labels
    assert any(label.startswith("best complete: ") for label in labels)
    # Each style drawn has its entry: the best complete trial's thick curve and its dashed value.
    (best_curve,) = [
        line for line in ax.lines if line.get_gid() == f"trial-{srp_study.best_trial.number}"
    ]
    entries = {(h.get_color(), h.get_linestyle(), h.get_linewidth()) for h in legend.get_lines()}
    assert (
        best_curve.get_color(),
        best_curve.get_linestyle(),
        best_curve.get_linewidth(),
    ) in entries
    assert (best.get_color(), best.get_linestyle(), best.get_linewidth()) in entries


def test_the_interval_is_ninety_percent_of_the_stored_std(srp_study: optuna.Study) -> None:
    ax = plot_predictions(srp_study)
    t = _explained(srp_study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))[0]
    (interval,) = [c for c in ax.collections if c.get_gid() == f"interval-{t.number}"]
    (segment,) = cast("LineCollection", interval).get_segments()
    low, high = sorted(segment[:, 1])
    half = 1.645 * t.user_attrs["srp:predicted_std"]
    mean = t.user_attrs["srp:predicted_value"]
    assert (low, high) == pytest.approx((mean - half, mean + half))


def test_a_study_without_srp_attributes_shows_its_curves() -> None:
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    study.optimize(objective, n_trials=15)
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    assert pruned

    ax = plot_predictions(study)
    assert len(_gids(ax, "trial-")) == 15
    assert len(_gids(ax, "pruned-")) == len(pruned)
    assert _gids(ax, "prediction-") == set()


def test_minimize_marks_the_lowest_complete_value() -> None:
    study = optuna.create_study(direction="minimize")
    add_complete_trials(study, 5)  # negated curves: lower is better
    ax = plot_predictions(study)
    (best,) = [line for line in ax.lines if line.get_gid() == "best"]
    assert _ydata(best)[0] == min(cast(float, t.value) for t in study.trials)
    assert _ydata(best)[0] == study.best_value
    (red,) = [line for line in ax.lines if line.get_gid() == f"trial-{study.best_trial.number}"]
    assert red.get_color() == "tab:red"


def test_running_nan_and_empty_trials_do_not_break_it() -> None:
    study = optuna.create_study(direction="maximize")
    add_complete_trials(study, 3)
    running = study.ask()
    running.report(0.5, 1)
    running.report(float("nan"), 2)
    running.report(float("inf"), 3)
    study.ask()  # nothing reported: no line
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0, 1)},
            state=TrialState.PRUNED,
            intermediate_values={1: 0.1, 2: 0.2},
            user_attrs={"srp:predicted_value": "not a number", "srp:predicted_std": 0.1},
        )
    )
    ax = plot_predictions(study)
    assert len(_gids(ax, "trial-")) == 5
    assert _gids(ax, "prediction-") == set()
    (line,) = [line for line in ax.lines if line.get_gid() == f"trial-{running.number}"]
    assert _ydata(line)[0] == 0.5
    assert all(math.isnan(v) for v in _ydata(line)[1:])
    assert line.get_linestyle() == ":"

    empty = plot_predictions(optuna.create_study())
    assert _gids(empty, "trial-") == set() and _gids(empty, "best") == set()


def test_curves_have_as_many_points_as_reports(srp_study: optuna.Study) -> None:
    ax = plot_predictions(srp_study)
    for t in srp_study.trials:
        (line,) = [line for line in ax.lines if line.get_gid() == f"trial-{t.number}"]
        assert len(_xdata(line)) == len(t.intermediate_values) <= N_STEPS


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="single-objective"):
        plot_predictions(optuna.create_study(directions=["minimize", "maximize"]))
    with pytest.raises(TypeError, match="target_name"):
        plot_predictions(optuna.create_study(), target_name=3)  # type: ignore[arg-type]


def test_missing_matplotlib_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_predictions(optuna.create_study())


def _traces(fig: Any, prefix: str) -> list[Any]:
    return [t for t in fig.data if (t.uid or "").startswith(prefix)]


def test_plotly_draws_the_same_curves_markers_and_predictions(srp_study: optuna.Study) -> None:
    fig = plotly_predictions(srp_study, target_name="accuracy")
    trials = srp_study.get_trials(deepcopy=False)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert {t.uid for t in _traces(fig, "trial-")} == {f"trial-{t.number}" for t in trials}
    assert {t.uid for t in _traces(fig, "pruned-")} == {f"pruned-{t.number}" for t in pruned}
    predictions = {t.uid: t for t in _traces(fig, "prediction-")}
    explained = _explained(pruned)
    assert set(predictions) == {f"prediction-{t.number}" for t in explained}
    for t in explained:
        trace = predictions[f"prediction-{t.number}"]
        assert trace.x == (t.last_step,)
        assert trace.y[0] == pytest.approx(t.user_attrs["srp:predicted_value"])
        assert trace.error_y.value == pytest.approx(1.645 * t.user_attrs["srp:predicted_std"])
        assert t.user_attrs["srp:reason"] in trace.hovertemplate
    # One legend entry per kind, not per trial.
    names = [t.name for t in fig.data if t.showlegend]
    assert len(names) == len(set(names))
    assert "pruned" in names
    assert fig.layout.yaxis.title.text == "accuracy"
    assert fig.layout.shapes[0].y0 == srp_study.best_value


def test_plotly_without_srp_attributes_and_minimize() -> None:
    study = optuna.create_study(direction="minimize")
    add_complete_trials(study, 5)
    fig = plotly_predictions(study)
    assert len(_traces(fig, "trial-")) == 5 and _traces(fig, "prediction-") == []
    best = min(cast(float, t.value) for t in study.trials)
    assert fig.layout.shapes[0].y0 == study.best_value == best
    with pytest.raises(ValueError, match="single-objective"):
        plotly_predictions(optuna.create_study(directions=["minimize", "maximize"]))


def test_plotly_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ImportError, match="pip install plotly"):
        plotly_predictions(optuna.create_study())

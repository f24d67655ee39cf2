from __future__ import annotations

from typing import Any
from typing import TYPE_CHECKING

from optuna.study import Study
from optuna.trial import TrialState

from optuna_srp.visualization._predictions import _get_predictions_info
from optuna_srp.visualization._predictions import _PredictionsInfo
from optuna_srp.visualization._predictions import INTERVAL_Z


if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_predictions(study: Study, *, target_name: str = "Objective Value") -> Axes:
    """Plot every trial's learning curve with SRPPruner's predictions, with Matplotlib.

    Each trial's intermediate values are a line: complete trials in blue, pruned ones in grey
    ending in a cross at the step where they were pruned, the best complete trial in red, and
    its final value as a dashed horizontal line. Where :class:`~optuna_srp.SRPPruner` pruned a
    trial, the final value it predicted from the curve so far is drawn at that step as a
    diamond with its 90% interval (mean ± 1.645 standard deviations), read from the trial's
    ``srp:predicted_value`` and ``srp:predicted_std`` user attributes: a pruned trial whose
    interval ends below the dashed line had little chance to beat the best. Studies run with
    another pruner, or none, show the curves alone.

    Example:

        .. testcode::

            import optuna

            from optuna_srp import SRPPruner
            from optuna_srp.visualization.matplotlib import plot_predictions


            def objective(trial):
                x = trial.suggest_float("x", 0.0, 1.0)
                for step in range(20):
                    trial.report(x * (1 - 0.8**step), step)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                return x * (1 - 0.8**20)


            study = optuna.create_study(direction="maximize", pruner=SRPPruner(seed=0))
            study.optimize(objective, n_trials=30)
            ax = plot_predictions(study, target_name="accuracy")
            ax.figure.savefig("predictions.png")

    Args:
        study:
            A single-objective :class:`~optuna.study.Study` whose trials reported intermediate
            values.
        target_name:
            The y axis label.

    Returns:
        A :class:`matplotlib.axes.Axes` object.

    Raises:
        ImportError: If Matplotlib is not installed.
        ValueError: If the study has more than one objective.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(
            "plot_predictions needs Matplotlib: pip install matplotlib "
            "(or install optuna-srp with the [plot] extra)."
        ) from e
    info = _get_predictions_info(study, target_name)
    _, ax = plt.subplots()
    _draw(ax, info)
    return ax


def _draw(ax: Axes, info: _PredictionsInfo) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    # Every artist has a gid naming what it shows ("trial-3", "pruned-3", "prediction-3",
    # "interval-3", "link-3", "best"), so that a figure can be inspected, e.g. by tests.
    n_complete = n_pruned = n_running = 0
    for curve in info.curves:
        if curve.state == TrialState.PRUNED:
            n_pruned += 1
            style: dict[str, Any] = {"color": "tab:gray", "lw": 0.7, "alpha": 0.5}
        else:
            n_complete += curve.state == TrialState.COMPLETE
            n_running += curve.state == TrialState.RUNNING
            style = {"color": "tab:blue", "lw": 0.9, "alpha": 0.7}
            if curve.state == TrialState.RUNNING:
                style["ls"] = ":"
        if curve.number == info.best_number:
            style = {"color": "tab:red", "lw": 2, "zorder": 5}
        ax.plot(curve.steps, curve.values, gid=f"trial-{curve.number}", **style)
        if curve.state == TrialState.PRUNED:
            ax.plot(
                curve.steps[-1],
                curve.values[-1],
                "x",
                color="dimgray",
                ms=4,
                mew=1,
                gid=f"pruned-{curve.number}",
            )
    n_predicted = 0
    for curve in info.curves:
        p = curve.prediction
        if p is None:
            continue
        n_predicted += 1
        # A faint link from where the trial was to what it was predicted to end at.
        ax.plot(
            [p.step, p.step],
            [curve.values[-1], p.mean],
            ls=":",
            color="tab:orange",
            lw=0.8,
            alpha=0.5,
            gid=f"link-{curve.number}",
        )
        bars = ax.errorbar(
            p.step,
            p.mean,
            yerr=INTERVAL_Z * p.std,
            fmt="D",
            ms=3.5,
            color="tab:orange",
            elinewidth=0.9,
            capsize=2,
            alpha=0.8,
            zorder=4,
        )
        marker, _, (interval, *_) = bars.lines
        assert marker is not None
        marker.set_gid(f"prediction-{curve.number}")
        interval.set_gid(f"interval-{curve.number}")
    if info.best_value is not None:
        ax.axhline(info.best_value, color="tab:red", ls="--", lw=1, alpha=0.8, gid="best")

    # One legend entry per kind of artist, with counts, rather than one per trial.
    handles = [Line2D([], [], color="tab:blue", label=f"complete ({n_complete})")]
    if n_running:
        handles.append(Line2D([], [], color="tab:blue", ls=":", label=f"running ({n_running})"))
    if n_pruned:
        handles.append(
            Line2D(
                [], [], color="tab:gray", marker="x", mec="dimgray", label=f"pruned ({n_pruned})"
            )
        )
    if n_predicted:
        handles.append(
            Line2D(
                [],
                [],
                color="tab:orange",
                marker="D",
                ms=3.5,
                label=f"predicted final value at pruning, 90% interval ({n_predicted})",
            )
        )
    if info.best_value is not None:
        handles.append(
            Line2D(
                [],
                [],
                color="tab:red",
                lw=2,
                label=f"best complete: {info.best_value:.4g} (trial {info.best_number})",
            )
        )
        handles.append(Line2D([], [], color="tab:red", ls="--", lw=1, label="its final value"))
    ax.set_title("Learning curves and predicted final values")
    ax.set_xlabel("Step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(info.target_name)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, loc="best", fontsize="small")

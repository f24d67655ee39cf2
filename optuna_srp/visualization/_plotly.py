from __future__ import annotations

from typing import Any
from typing import TYPE_CHECKING

from optuna.study import Study
from optuna.trial import TrialState

from optuna_srp.visualization._predictions import _get_predictions_info
from optuna_srp.visualization._predictions import INTERVAL_Z


if TYPE_CHECKING:
    import plotly.graph_objects as go


def plot_predictions(study: Study, *, target_name: str = "Objective Value") -> go.Figure:
    """Plot every trial's learning curve with SRPPruner's predictions, with Plotly.

    Each trial's intermediate values are a line: complete trials in blue, pruned ones in grey
    ending in a cross at the step where they were pruned, the best complete trial in red, and
    its final value as a dashed horizontal line. Where :class:`~optuna_srp.SRPPruner` pruned a
    trial, the final value it predicted from the curve so far is drawn at that step as a
    diamond with its 90% interval (mean ± 1.645 standard deviations), read from the trial's
    ``srp:predicted_value`` and ``srp:predicted_std`` user attributes; hovering over it shows
    the trial's ``srp:reason``. Studies run with another pruner, or none, show the curves
    alone. :func:`optuna_srp.visualization.matplotlib.plot_predictions` draws the same with
    Matplotlib.

    Example:

        .. testcode::

            import optuna

            from optuna_srp import SRPPruner
            from optuna_srp.visualization import plot_predictions


            def objective(trial):
                x = trial.suggest_float("x", 0.0, 1.0)
                for step in range(20):
                    trial.report(x * (1 - 0.8**step), step)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                return x * (1 - 0.8**20)


            study = optuna.create_study(direction="maximize", pruner=SRPPruner(seed=0))
            study.optimize(objective, n_trials=30)
            fig = plot_predictions(study, target_name="accuracy")
            fig.show()

    Args:
        study:
            A single-objective :class:`~optuna.study.Study` whose trials reported intermediate
            values.
        target_name:
            The y axis label.

    Returns:
        A :class:`plotly.graph_objects.Figure` object.

    Raises:
        ImportError: If Plotly is not installed.
        ValueError: If the study has more than one objective.
    """
    try:
        import plotly.graph_objects as go
    except ImportError as e:
        raise ImportError(
            "plot_predictions needs Plotly: pip install plotly (or use "
            "optuna_srp.visualization.matplotlib.plot_predictions with Matplotlib)."
        ) from e
    info = _get_predictions_info(study, target_name)
    fig = go.Figure()
    shown: set[str] = set()

    def legend(group: str, label: str) -> dict[str, Any]:
        # One legend entry per kind of trace rather than one per trial.
        first = group not in shown
        shown.add(group)
        return {"legendgroup": group, "name": label, "showlegend": first}

    for curve in info.curves:
        state = curve.state
        if curve.number == info.best_number:
            line, group = {"color": "#d62728", "width": 3}, "best"
        elif state == TrialState.PRUNED:
            line, group = {"color": "rgba(127,127,127,0.5)", "width": 1}, "pruned"
        else:
            line, group = {"color": "rgba(31,119,180,0.7)", "width": 1}, state.name.lower()
            if state == TrialState.RUNNING:
                line["dash"] = "dot"
        label = {"best": f"best complete (trial {info.best_number})"}.get(group, group)
        fig.add_trace(
            go.Scatter(
                x=curve.steps,
                y=curve.values,
                mode="lines",
                line=line,
                hovertemplate=f"trial {curve.number}<br>step %{{x}}: %{{y}}<extra></extra>",
                uid=f"trial-{curve.number}",
                **legend(group, label),
            )
        )
        if state == TrialState.PRUNED:
            fig.add_trace(
                go.Scatter(
                    x=[curve.steps[-1]],
                    y=[curve.values[-1]],
                    mode="markers",
                    marker={"symbol": "x", "color": "dimgray", "size": 6},
                    hovertemplate=f"trial {curve.number} pruned at step %{{x}}<extra></extra>",
                    uid=f"pruned-{curve.number}",
                    **legend("pruned", "pruned"),
                )
            )
    for curve in info.curves:
        p = curve.prediction
        if p is None:
            continue
        reason = p.reason or f"predicted {p.mean:.4g} ± {p.std:.2g}"
        fig.add_trace(
            go.Scatter(
                x=[p.step],
                y=[p.mean],
                mode="markers",
                marker={"symbol": "diamond", "color": "#ff7f0e", "size": 7},
                error_y={"type": "constant", "value": INTERVAL_Z * p.std, "color": "#ff7f0e"},
                hovertemplate=f"trial {curve.number}: {reason}<extra></extra>",
                uid=f"prediction-{curve.number}",
                **legend("prediction", "predicted final value at pruning, 90% interval"),
            )
        )
    if info.best_value is not None:
        fig.add_hline(
            y=info.best_value,
            line={"color": "#d62728", "dash": "dash", "width": 1},
            annotation_text=f"best complete: {info.best_value:.4g}",
            annotation_position="bottom right",
        )
    fig.update_layout(
        title="Learning curves and predicted final values",
        xaxis_title="Step",
        yaxis_title=info.target_name,
        template="plotly_white",
    )
    return fig

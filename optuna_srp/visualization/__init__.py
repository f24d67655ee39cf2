"""Plots of SRPPruner's decisions, in the style of :mod:`optuna.visualization`.

:func:`plot_predictions` returns a Plotly figure; :mod:`optuna_srp.visualization.matplotlib`
has the Matplotlib variant, which returns ``Axes``. The plotting libraries are optional
dependencies (``pip install "optuna-srp[plot]"``), imported when a plot is made.
"""

from optuna_srp.visualization import matplotlib
from optuna_srp.visualization._plotly import plot_predictions
from optuna_srp.visualization._predictions import INTERVAL_Z


__all__ = ["INTERVAL_Z", "matplotlib", "plot_predictions"]

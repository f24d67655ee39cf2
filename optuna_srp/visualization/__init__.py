"""Plots of SRPPruner's decisions, in the style of :mod:`optuna.visualization`.

:mod:`optuna_srp.visualization.matplotlib` has the Matplotlib variants. The plotting libraries
are optional dependencies, imported when a plot is made.
"""

from optuna_srp.visualization import matplotlib
from optuna_srp.visualization._predictions import INTERVAL_Z


__all__ = ["INTERVAL_Z", "matplotlib"]

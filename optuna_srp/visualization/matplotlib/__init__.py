"""Matplotlib variants of :mod:`optuna_srp.visualization`'s plots (return ``Axes``)."""

from optuna_srp.visualization.matplotlib._predictions import plot_predictions


__all__ = ["plot_predictions"]

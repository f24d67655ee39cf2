"""Pruner specs of the benchmark: ``name`` or ``name:key=value,key=value``.

Names and what they build (Optuna's built-ins at their defaults):

========================  =====================================================================
``srp``                   ``SRPPruner()``; keyword arguments as ``srp:threshold=0.05,...``
``fast_hyperband``        ``FastHyperbandPruner()``; keyword arguments as for ``srp``
``median``                ``MedianPruner()``
``percentile``            ``PercentilePruner(25.0)`` (``percentile`` is required; 25 is
                          Optuna's documentation example)
``successive_halving``    ``SuccessiveHalvingPruner()``
``hyperband``             ``HyperbandPruner()``
``patient``               ``PatientPruner(None, patience=3)``: prune a trial whose best value
                          has not improved in 3 steps (``patience`` has no default in Optuna;
                          ``patient:wrapped=median`` wraps a ``MedianPruner()`` instead)
``wilcoxon``              ``WilcoxonPruner()``
``nop``                   ``NopPruner()``
========================  =====================================================================

Values are read as Python literals (``0.05``, ``20``, ``True``, ``None``), anything else as a
string.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any
import warnings

import optuna
from optuna.pruners import BasePruner

from optuna_srp import FastHyperbandPruner
from optuna_srp import SRPPruner


# Optuna's own pruners: at their defaults (these exact labels), the anchor that the report
# compares every other pruner with.
OPTUNA_PRUNERS = (
    "median",
    "percentile",
    "successive_halving",
    "hyperband",
    "patient",
    "wilcoxon",
    "nop",
)
PRUNER_NAMES = ("srp", "fast_hyperband", *OPTUNA_PRUNERS)
DEFAULT_PRUNERS = ("srp", "median", "hyperband", "nop")
_ALIASES = {
    "fhb": "fast_hyperband",
    "sha": "successive_halving",
    "asha": "successive_halving",
    "none": "nop",
}


@dataclass(frozen=True)
class PrunerSpec:
    """A pruner by name and keyword arguments.

    Attributes:
        label: The spec as given (normalised), used as the pruner's name in results.
        name: One of :data:`PRUNER_NAMES`.
        kwargs: Keyword arguments for the pruner's constructor.
    """

    label: str
    name: str
    kwargs: dict[str, Any]

    def build(self) -> BasePruner:
        """Build a fresh pruner."""
        return make_pruner(self)


def parse_pruner_spec(text: str) -> PrunerSpec:
    """Parse ``name`` or ``name:key=value,key=value``.

    Raises:
        ValueError: If the name is unknown or an argument is malformed.
    """
    text = text.strip()
    name, _, rest = text.partition(":")
    name = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if name not in PRUNER_NAMES:
        raise ValueError(f"unknown pruner {name!r} in {text!r}; known: {', '.join(PRUNER_NAMES)}")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, raw = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise ValueError(f"pruner argument {item!r} in {text!r} is not key=value")
        kwargs[key.strip()] = _literal(raw.strip())
    label = name if not kwargs else name + ":" + ",".join(f"{k}={v}" for k, v in kwargs.items())
    spec = PrunerSpec(label=label, name=name, kwargs=kwargs)
    try:
        make_pruner(spec)
    except (TypeError, ValueError) as e:
        raise ValueError(f"pruner {text!r}: {e}") from None
    return spec


def make_pruner(spec: PrunerSpec) -> BasePruner:
    """Build the pruner described by ``spec``.

    Raises:
        TypeError: If an argument is not accepted by the pruner.
        ValueError: If an argument is out of range.
    """
    kw = dict(spec.kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if spec.name == "srp":
            return SRPPruner(**kw)
        if spec.name == "fast_hyperband":
            return FastHyperbandPruner(**kw)
        if spec.name == "median":
            return optuna.pruners.MedianPruner(**kw)
        if spec.name == "percentile":
            kw.setdefault("percentile", 25.0)
            return optuna.pruners.PercentilePruner(**kw)
        if spec.name == "successive_halving":
            return optuna.pruners.SuccessiveHalvingPruner(**kw)
        if spec.name == "hyperband":
            return optuna.pruners.HyperbandPruner(**kw)
        if spec.name == "patient":
            wrapped = kw.pop("wrapped", None)
            inner = None if wrapped is None else make_pruner(parse_pruner_spec(str(wrapped)))
            kw.setdefault("patience", 3)
            return optuna.pruners.PatientPruner(inner, **kw)
        if spec.name == "wilcoxon":
            return optuna.pruners.WilcoxonPruner(**kw)
        if spec.name == "nop":
            return optuna.pruners.NopPruner(**kw)
    raise ValueError(f"unknown pruner {spec.name!r}")


def _literal(raw: str) -> Any:
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw

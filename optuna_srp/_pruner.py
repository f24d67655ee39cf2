"""The Optuna glue: when to fit, when to decide, and what is written back to the trial."""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence
import contextlib
import dataclasses
from dataclasses import dataclass
from dataclasses import field
import functools
import hashlib
import math
import operator
import reprlib
import sys
import threading
from typing import Any
from typing import TYPE_CHECKING
import warnings
import weakref

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.pruners import BasePruner
from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from scipy.special import stdtr

from optuna_srp._features import CurveFeaturizer
from optuna_srp._features import CurveRecord
from optuna_srp._features import encode_target
from optuna_srp._features import ExtraFeatures
from optuna_srp._features import make_record
from optuna_srp._features import robust_center_scale
from optuna_srp._model import SRMEnsemble
from optuna_srp._rungs import _UpdateFinishedTrialError
from optuna_srp._rungs import early_rung_fraction
from optuna_srp._rungs import FULL_FRACTION
from optuna_srp._rungs import in_full_group
from optuna_srp._rungs import report_index
from optuna_srp._rungs import RUNG_FRACTION
from optuna_srp._rungs import rung_peers
from optuna_srp._rungs import rung_steps
from optuna_srp._rungs import rung_stops
from optuna_srp._rungs import startup_first_rung
from optuna_srp._rungs import startup_rung_fraction


if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Mapping
    from types import FrameType


ATTR_PREFIX = "srp:"
# Where the start-up's rungs begin, per length of the longest complete curve, in the study's
# system attributes once a worker has decided.
_STARTUP_RUNGS_KEY = "srp:startup_rungs@{}"
# Set in the study's system attributes once the source trials are found to mislead the study
# (see _source_misleads): every worker then decides without them. Keyed by a fingerprint of the
# source, so that a restart with another source checks that one afresh.
_SOURCE_DROPPED_KEY = "srp:source_dropped@{}"
# What to pass as source_trials: pruned trials too, since a pruned study's complete trials are
# mostly its better runs and, alone, hide where the ranks of all its runs settled.
_SOURCE_CALL = "study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))"
# The source check: with at least this many complete trials of the study's own, the source's
# models must put most of them within this many standard deviations of their final values.
# For a calibrated model, a majority of 3 outside 2 standard deviations happens with
# probability 0.006 (each is outside with 0.046).
_MIN_SOURCE_CHECK_TRIALS = 3
_SOURCE_CHECK_Z = 2.0
# While source trials of the study's search space train the models, a trial must beat the best
# complete trial by this fraction of how far the runs the models learn from got (the 10-90%
# range of their final values, robust_center_scale). A study's first complete trials are often
# at chance level (TaskSet: most runs never learn), and every run at chance is then level with
# the incumbent and has a fair chance to end above it, by noise: a re-tuning GRU128 study spent
# 6 of its first 10 full trainings on such runs. Beating the best by a hair is cheap to lose;
# the source, whose runs that learned show how far runs get in this setup, gives the unit that
# a study's first trials lack. Re-tuning, summed regret 4.49 against 5.00 (held-out orderings)
# and 4.03 against 4.25; from another search space (another setup) it cost the study
# (docs/benchmarks-log.md, warm start). Where under a tenth of the runs learn, the 10-90% range is
# the chance level's noise (TaskSet patch128, embed128, LSTM128_E128, VRNN64: .016-.030 of
# loss, against .06-.17 from the median up to the 95th percentile), and the unit is how far the
# best twentieth (as for the rungs) got above the median (_margin_unit); elsewhere the range is
# the larger. The eight (b), (c) pairs, summed regret 3.77 against 3.84 (TaskSet patch128 from
# embed128's curves .25 against .31 at 10 full trainings); held-out re-tuning 3.51 against
# 3.58 (docs/benchmarks-log.md, warm start). The unit is read on the source trials within the
# study's search space (its ranges and choices), and only where there are at least
# _MIN_MARGIN_RUNS of them: how far runs get where the study searches. A fresh user re-tuned in
# a range narrowed around the old best, where every run ends within noise of the others: the
# unit of the whole old range made every run "unable to beat the first complete trial by a
# twentieth", and the study stopped 29 of 30 trials behind it (docs/benchmarks-log.md, warm start).
_SOURCE_MARGIN = 0.05
# The fewest source trials within the study's search space that set the margin's unit: the
# 10-90% range of fewer than ten runs is the range of all of them.
_MIN_MARGIN_RUNS = 10
# Decision steps get their own model; in between, the nearest lower one is used. Geometric
# spacing gives early steps (where most trials are stopped) fine resolution at a bounded cost.
_CHECKPOINT_RATIO = 1.25
_MAX_REMEMBERED_TRIALS = 10_000
# Each checkpoint costs one ensemble fit per refit; long curves get a coarser grid instead.
_MAX_CHECKPOINTS = 16
_FULL_THRESHOLD_FRACTION = 0.1
# A trial whose best value so far is in this top fraction of all the trials (any state) that
# reached its step is not pruned, so the models keep being fed good complete trials. Without
# the rule TaskSet GRU128 lost the best in 3 of 3 orderings; 0.05 gave identical decisions on
# 5 orderings x 8 corpora (the median guard binds first): the value is inert, the rule is not
# (docs/benchmarks-log.md, first round).
_KEEP_TOP_FRACTION = 0.1
# A trial whose just-reported value is worse than this quantile of the complete trials' values
# at its step is a laggard, pruned when the probability is below _LAGGARD_THRESHOLD (scaled by
# the square of the early ramp). 0.2 for the fraction lost the best ResNet in 6 of 20 orderings
# (it sits between the 10% and 20% quantiles before the learning-rate drop); 0.3 for the
# threshold was a wash (docs/benchmarks-log.md, third round).
_LAGGARD_FRACTION = 0.1
_LAGGARD_THRESHOLD = 0.2
# A trial below the lowest of the complete trials' values at its step by more than their whole
# range there (highest minus lowest) is a laggard whatever the models say: they learned from
# no run like it. An RBF model far from its training curves predicts about their mean final
# value, so where every complete run had learned, a run at chance was predicted to end near
# the best with a 25% chance (a fresh user's study) and trained a third of its curve. With
# the 10-90% range instead of the whole, LCBench balanced lost a best run at its second report;
# with the whole, random orderings 0-9 summed 6.57 against 6.65, no cell worse by more than .01;
# neutral where it was not chosen: held out 6.91 for both, TPE 4.79 against 4.78
# (docs/benchmarks-log.md, issue 17). It needs this many complete values at the step: of n
# runs that differ only by noise, a new one falls below the lowest by more than their range
# at a check with a chance of 17% for n = 2, 1.5% for 5, .09% for 10 (Gaussian noise,
# simulated); re-tuning in a narrowed range (its runs within noise of each other) with 3-4
# complete trials of its own beside a source completed 4 of 30 runs.
_MIN_RANGE_TRIALS = 10
# The models are refitted when the number of complete trials has grown by this fraction since
# the last fit (and at least by one trial): it bounds the cost of refits in a long study.
_REFIT_FRACTION = 0.1
# The most curve values per model, evenly spaced up to the decision step: it bounds the cost
# for long curves.
_MAX_CURVE_POINTS = 10
# The smallest predicted std, in units of the complete trials' 10-90% range of final values
# (robust_center_scale).
_MIN_STANDARDISED_STD = 1e-12


@dataclass
class _StepModel:
    featurizer: CurveFeaturizer
    model: SRMEnsemble | None  # None: the fit failed, do not prune with it


# A trial as the caches know it: its number and its completion time. The time tells apart two
# trials of the same number in a study deleted and re-created under the same id (SQLite reuses
# a deleted row's id).
_TrialKey = tuple[int, Any]
# A trial's sorted steps, its best finite value up to each and its value at each (non-finite
# ones as -inf), higher is better.
_Curve = tuple[list[int], list[float], list[float]]


@dataclass
class _Fit:
    """Everything fitted from one set of complete trials."""

    complete_numbers: frozenset[int]
    complete_keys: frozenset[_TrialKey]
    n_complete_seen: int
    # The study's own complete trials first, then the source trials (``n_own`` of them are own):
    # the models learn from all, the median and laggard rules read only the study's own.
    records: list[CurveRecord]
    n_own: int
    target: np.ndarray  # standardised: (encoded final - target_center) / target_scale
    target_center: float
    target_scale: float
    best_final: float
    # What a trial must beat best_final by: 0, or _SOURCE_MARGIN of _margin_unit(finals) while
    # source trials are in ``records``.
    margin: float
    incumbent_curves: list[_Curve]  # of the complete trials whose value is best_final
    checkpoints: np.ndarray
    steps: np.ndarray  # the distinct steps the complete trials reported, sorted
    end_step: int | None  # the lower median of the complete trials' last steps
    # Every readable complete trial of the study's own, before the subsample the models learn
    # from (``max_train_trials`` keeps the best quarter and a random rest): the median and
    # laggard rules are about all complete trials, and the subsample's median sits near their
    # 63rd percentile.
    own: list[CurveRecord]
    # The reports of the study's own complete trials: a lower bound on what the study has
    # spent, so that most decisions need no read of every trial (_model_bar).
    own_reports: int
    step_models: dict[int, _StepModel] = field(default_factory=dict)
    values_at_step: dict[int, np.ndarray] = field(default_factory=dict)
    own_index: _ReportIndex | None = None  # of ``own``, built at the first _complete_values_at
    quantile_at_step: dict[tuple[int, float], float] = field(default_factory=dict)
    # Where the study's own evidence puts the rungs (see early_rung_fraction), computed at the
    # first check after each refit: all trials' curves are read, so not at every check.
    early_rungs: tuple[float | None] | None = None

    @property
    def n_readable(self) -> int:
        """The complete trials that could be turned into records (before subsampling)."""
        return len(self.own)

    @property
    def value_to_beat(self) -> float:
        return self.best_final + self.margin

    @property
    def with_source(self) -> bool:
        """Whether source trials are among the trials the models learn from."""
        return self.n_own < len(self.records)


@dataclass
class _StudyState:
    """What the pruner keeps for one study: nothing in it is shared with another study."""

    storage: Callable[[], object | None]  # a weak reference to the study's storage
    fit: _Fit | None = None
    complete_records: dict[_TrialKey, CurveRecord | None] = field(default_factory=dict)
    finished_curves: dict[_TrialKey, _Curve] = field(default_factory=dict)
    # The attributes last written per trial: the FrozenTrial handed to prune() is a
    # process-local copy that does not see our own writes.
    written_attrs: OrderedDict[_TrialKey, dict[str, object]] = field(default_factory=OrderedDict)
    # Where the start-up's rungs begin, per length of the longest complete curve, once decided
    # (startup_rung_fraction; the study's stored decision, _STARTUP_RUNGS_KEY).
    startup_rungs: dict[int, float] = field(default_factory=dict)
    # Whether the source trials were found to mislead this study (_SOURCE_DROPPED_KEY).
    source_dropped: bool = False
    # The complete trials ``fit`` was last checked against (_current_fit): their numbers and
    # the first one's key.
    checked_complete: tuple[tuple[int, ...], _TrialKey | None] | None = None
    # Per checkpoint step, the kernel parameters cross-validation last chose on a training set
    # at max_train_trials, and how many complete trials the study had then (_step_model).
    kernel_choices: dict[int, tuple[int, dict[str, float]]] = field(default_factory=dict)
    warned: set[str] = field(default_factory=set)
    # How many numbers extra_features returned for the first trial read (None: not yet).
    n_extra: int | None = None


class SRPPruner(BasePruner):
    """Pruner using sequential regression models of the final value (SRMs).

    The early-stopping rule of Baker et al., *Accelerating Neural Architecture Search using
    Performance Prediction* (arXiv:1705.10823), with calibrated uncertainty. For a running
    trial at step ``τ``, an ensemble of ν-SVRs (:class:`SRMEnsemble`) trained on the complete
    trials' curves cut at ``τ`` (values, first and second differences, hyper-parameters and
    ``extra_features``) predicts its final value with a mean and a standard deviation. The
    standard deviation includes the model's out-of-bag error among the trials predicted
    closest, from those that ended above their prediction (the upper tail, what beating the
    best asks: ``SRMEnsemble(calibration="upper")``; both sides while source trials train the
    models), and the probability of beating the best complete trial is a Student t tail, so
    that a model trained on few curves is not trusted beyond what they show.

    The decision (``SRPPruner._decide``; docs/how-it-works.md):

    * Pruned when that probability is below ``threshold``, or below the chance of a new best that
      its remaining steps would buy as fresh trials (its remaining share of a full training over
      the full trainings the study has spent, which matters early in a study), and the value
      just reported is below the complete trials' median at that step
      (:class:`~optuna.pruners.MedianPruner`'s rule): the models cannot know late learners they
      never saw complete, the median cannot see crossing curves, and requiring both keeps what
      either keeps.
    * A laggard, worse than all but the worst tenth of the complete trials at its step, is
      pruned when the probability is below 0.2; one worse than every complete trial there by
      more than their range (highest minus lowest), whatever the probability: the models
      learned from no run like it, and far from their training curves they predict about the
      mean final value.
    * Over the first tenth of the curve, where the first values say least, both bars are
      multiplied by the share of the curve at the model's checkpoint over a tenth (at the
      ``k``-th of ``n`` reports, ``10 k / n``; its square for the laggard's): a fifth at the
      first of 50 reports, a tenth at the first of 100, and the full bars from the first
      report of 10 or fewer.
    * Never pruned: a trial whose best value so far is in the top tenth of all trials at its
      step (the models need good complete trials); one that has reported a value better than
      the best complete trial's final value, or level with a best complete trial at the same
      step; and at or past the step by which half the complete trials had ended
      (``kept:end``): the models learn from no later step, and where the complete trials
      end alike stopping there saves nothing.

    Until ``n_startup_trials`` trials are complete, successive-halving rungs decide instead
    (see ``n_startup_trials``). After that, where the study's best complete trials led early
    (a 256th, a 64th or a 16th of the curve: all of the best five, or with more than a hundred
    complete trials most of the best twentieth), rungs from there to a quarter of the curve
    screen beside the models; where curves cross, the models decide alone.

    Decisions do not depend on the objective's units or offset, nor on where step numbering
    starts (``n_warmup_steps`` and ``interval_steps`` count absolute steps, as in
    :class:`~optuna.pruners.MedianPruner`). Non-finite reported values are read as the worst
    value at that step, and a trial whose last value is not finite where finite values were
    reported by that step (by other trials, or earlier by itself) has diverged and is stopped
    at once (``pruned:diverged``; the full group too), unless it already reported the best
    complete value. Complete trials may end at different steps; their final value is the one
    they were told with. Nothing raises out of :meth:`prune`: a trial that cannot be turned
    into numbers (``extra_features``, parameters, values) is left out or not pruned, with one
    :class:`RuntimeWarning` per study.

    Workers sharing a study through a storage decide from the complete trials they read from
    it; the models are fitted per process and refitted when that set has grown by a tenth.
    What the pruner keeps is per study (its storage and id, not its name), so one pruner can
    serve several studies (docs/distributed.md).

    When its decision about a trial changes, the pruner writes it to the trial's user
    attributes: ``srp:decision`` (e.g. ``pruned:model``, ``pruned:rung``, ``kept:median``),
    ``srp:reason`` (one line for optuna-dashboard) and, from the models,
    ``srp:predicted_value``, ``srp:predicted_std``, ``srp:probability`` and ``srp:step``.

    Example:

        .. testcode::

            import numpy as np
            import optuna
            from sklearn.datasets import load_digits
            from sklearn.linear_model import SGDClassifier
            from sklearn.model_selection import train_test_split

            from optuna_srp import SRPPruner

            X, y = load_digits(return_X_y=True)
            X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)
            classes = np.unique(y)


            def objective(trial):
                alpha = trial.suggest_float("alpha", 1e-6, 1e-1, log=True)
                clf = SGDClassifier(alpha=alpha, random_state=0)
                for step in range(20):
                    clf.partial_fit(X_train, y_train, classes=classes)
                    trial.report(clf.score(X_valid, y_valid), step)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                return clf.score(X_valid, y_valid)


            study = optuna.create_study(
                direction="maximize",
                sampler=optuna.samplers.TPESampler(seed=0),
                pruner=SRPPruner(seed=0),
            )
            # Successive-halving rungs decide until 10 trials are complete; after, the
            # models, with rungs beside them where the best runs led early. Each judged
            # trial's user attribute "srp:decision" names the rule (e.g. "pruned:rung").
            study.optimize(objective, n_trials=60)

    Args:
        n_startup_trials:
            The models decide once this many trials have completed (they need them to learn from;
            at least 2). Before, the start-up rule decides: at a quarter of the curve (by position
            in the longest complete curve's reports) a trial goes on if its value is in the top
            quarter of the values all trials had there, as in
            :class:`~optuna.pruners.SuccessiveHalvingPruner`; until the first 12 trials that
            reached the quarter have shown where ranks settle, every other trial (the odd-numbered
            ones) meets rungs from a 256th of the curve (its first report, under 512 reports)
            instead, as Hyperband hedges between brackets. Once those 12 ranked at the quarter as
            they had at a 256th, a 64th or a 16th of the curve (rank correlation at least 0.9, the
            best complete trial in the top quarter there too), the rungs begin there for every
            trial and go every 4x up to the quarter; otherwise every trial meets the quarter's. A
            full group holding a quarter of the steps skips the rungs before the quarter (where
            they begin earlier it meets the quarter's) and is trained to the end, to feed the
            models complete curves, slow starters included (the paper's fast-Hyperband trains part
            of each bracket fully). Such a stop is stored as ``srp:decision`` = ``pruned:rung``.
        n_warmup_steps:
            Pruning is disabled before this step, as in :class:`~optuna.pruners.MedianPruner`.
        interval_steps:
            Interval in number of steps between the pruning checks, offset by the warmup
            steps, as in :class:`~optuna.pruners.MedianPruner`.
        threshold:
            A trial is pruned when the predicted probability that its final value beats the
            best complete trial is below this, or below what its remaining steps would buy as
            fresh trials where that is higher (early in a study), in [0, 1]; 0 turns the
            model rule off, the laggard rule stays. Higher prunes more and saves more steps;
            lower keeps more long shots.
        n_estimators:
            Number of ν-SVRs in each step's ensemble.
        seed:
            Seed for the bootstrap resamples, cross-validation folds and the subsampling of
            the training set beyond ``max_train_trials``.
        wrapped_pruner:
            A pruner consulted instead of the start-up rule while no model is ready (fewer
            than ``n_startup_trials`` complete trials; with ``source_trials``, before the
            study's first complete trial of its own), e.g.
            :class:`~optuna.pruners.NopPruner` to train every trial fully until then. It also
            turns off the rungs beside the models: the models alone decide once ready.
            :obj:`None` means the start-up rule and the rungs.
        extra_features:
            A callable mapping a :class:`~optuna.trial.FrozenTrial` to a sequence of numbers,
            e.g. architecture descriptors (number of layers, of weights) kept in user
            attributes, as many for every trial (where not, one warning: the models read
            missing ones as 0; non-finite ones are read as 0 too). Used as model features beside
            the curve and the hyper-parameters. A module-level function, not a lambda, keeps
            the pruner picklable.
        max_train_trials:
            The most complete trials a model is trained on (at least 10). Beyond it, the best
            quarter is always kept and the rest subsampled, and the kernel's parameters
            chosen by cross-validation are kept until the study's complete trials have
            doubled; it bounds the cost of a refit. The median guard and the laggard rule
            read every complete trial, not only these.
        source_trials:
            Complete and pruned trials of earlier studies of the same objective and direction (e.g.
            ``optuna.load_study(...).get_trials(states=(TrialState.COMPLETE,
            TrialState.PRUNED))``), as in :class:`~optuna.samplers.CmaEsSampler`. The pruned
            trials' partial curves are evidence only of where ranks settle, where the rungs begin
            while the source decides (a pruned study's complete trials are mostly its better runs,
            too few to show it alone). The complete trials train the models beside the study's own
            complete trials, so the models decide from the study's first complete trial on instead
            of its ``n_startup_trials``-th (given ``n_startup_trials - 1`` usable source trials;
            with fewer, once own and source trials together reach that number). They count less as
            the study's own accumulate: ``5 x n_startup_trials`` of them at first, five fewer for
            each own complete trial, none once the study has ``n_startup_trials`` of its own, when
            it decides as it would without a source. Before the study's first complete trial
            (workers that start at once), a source of the study's parameters (each trial has the
            parameter names of some source trial, as the branches of a conditional search space do)
            places the rungs on its own curves, by position (the source's ``k``-th report is the
            trial's ``k``-th, whatever step numbers either counts), where its evidence would place
            them beside the models, else at a quarter, and the trials outside the full group meet
            them. The source's models stop most runs early, so that can come late or never (39 of
            110 held-out re-tuning studies). A source whose models miss the study's runs is dropped
            sooner, with one warning: from the study's third complete trial on, models trained on
            the source alone must put most of its complete trials within 2 standard deviations of
            their final values, from a quarter of the curve (until then the full group trains to
            the end, to give the check those trials). The source must have the study's direction (a
            trial does not carry it), and be trained as the study is. Where a typical complete
            trial of each has as many reports, the models read the source's curves by position too
            (steps counted from 0, from 1001 or in iterations read alike); otherwise at the study's
            step numbers (reports at other intervals of the same steps read right, though the first
            wave's rungs, by position, fall at other fractions of the curve). Read so, a source
            whose complete trials all end before the study's longest complete trial, in steps and
            in reports, has as final values what the study's runs reach partway through: it is
            dropped, with one warning, at once. A source of longer runs is kept until the check
            drops it. A changed search space is normal: a source trial brings its curve and the
            parameters the study shares, encoded with the study's distributions. Source trials are
            never the study's best, never written to it, and never enter the median, laggard and
            top-tenth rules (they may be in other units). While source trials with the study's
            parameters train the models, a trial must beat the best complete trial by a twentieth
            of how far the runs the models learn from got (the 10-90% range of their final values,
            or from the median up to the 95th percentile where that is more: where under a tenth of
            the runs learn), read on the source trials within the study's ranges where at least ten
            are: a run level with a first incumbent at chance level can beat it only by noise, and
            in a range narrowed around the old best every run ends within noise of the others. A
            trial that is neither complete nor pruned, without intermediate values, or
            complete and multi-objective or with a non-finite final value is skipped with one
            warning (non-finite values in its curve are read as in the study's own trials).

    Raises:
        ValueError: If an argument is out of range.
        TypeError: If an argument is of the wrong type (``source_trials`` not a sequence of
            :class:`~optuna.trial.FrozenTrial`).
    """

    def __init__(
        self,
        n_startup_trials: int = 10,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        *,
        threshold: float = 0.02,
        n_estimators: int = 5,
        seed: int | None = None,
        wrapped_pruner: BasePruner | None = None,
        extra_features: ExtraFeatures | None = None,
        max_train_trials: int = 150,
        source_trials: Sequence[FrozenTrial] | None = None,
    ) -> None:
        _check_int("n_startup_trials", n_startup_trials, 2)
        _check_int("n_warmup_steps", n_warmup_steps, 0)
        _check_int("interval_steps", interval_steps, 1)
        _check_int("n_estimators", n_estimators, 1)
        _check_int("max_train_trials", max_train_trials, 10)
        _check_float("threshold", threshold, 0.0, 1.0)
        if seed is not None:
            _check_int("seed", seed, 0)
        if wrapped_pruner is not None and not isinstance(wrapped_pruner, BasePruner):
            raise TypeError(
                f"wrapped_pruner must be a BasePruner or None, but got {wrapped_pruner=!r}."
            )
        if extra_features is not None and not callable(extra_features):
            raise TypeError(
                f"extra_features must be callable or None, but got {extra_features=!r}."
            )

        self._n_startup_trials = n_startup_trials
        self._n_warmup_steps = n_warmup_steps
        self._interval_steps = interval_steps
        self._threshold = threshold
        self._n_estimators = n_estimators
        self._seed = None if seed is None else int(seed)
        self._wrapped_pruner = wrapped_pruner
        self._extra_features = extra_features
        self._max_train_trials = max_train_trials
        # Complete source trials train the models; pruned ones only place the rungs.
        self._source_trials, self._source_pruned = _usable_source_trials(source_trials)
        self._source_dropped_key = _SOURCE_DROPPED_KEY.format(
            _digest(self._source_trials + self._source_pruned)
        )
        # The source trials as records, per orientation (built at first use).
        self._source_records: dict[float, list[CurveRecord]] = {}
        # Where the rungs begin on the source's evidence, per orientation (None: no rungs), and
        # the sets of parameter names a trial of the study must have one of for that.
        self._source_rungs: dict[float, float | None] = {}
        self._source_params = frozenset(
            frozenset(t.params) for t in self._source_trials + self._source_pruned
        )
        # Each parameter's kind (float, int or categorical) in the source, for _warn_renamed.
        self._source_kinds = {
            n: type(d)
            for t in self._source_trials + self._source_pruned
            for n, d in t.distributions.items()
        }
        self._source_typical_steps = _typical_steps(self._source_trials)
        self._source_longest = max(
            (len(t.intermediate_values) for t in self._source_trials), default=0
        )
        self._source_end = max(
            (max(t.intermediate_values) for t in self._source_trials), default=0
        )
        self._lock = threading.RLock()
        # Keyed by the storage object's id and the study id; each entry holds a weak reference
        # to its storage, so that a new storage that reuses a collected one's id is not taken
        # for it.
        self._studies: dict[tuple[int, int], _StudyState] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        # Fitted models belong to the storage they were read from; an unpickled pruner may be
        # pointed at another one with the same study id, so it refits from what it finds.
        state["_studies"] = {}
        state["_source_records"] = {}
        state["_source_rungs"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        _check_single_objective(study)
        step = trial.last_step
        if step is None or step < self._n_warmup_steps:
            return False
        if not _is_first_in_interval_step(
            step, trial.intermediate_values.keys(), self._n_warmup_steps, self._interval_steps
        ):
            return False

        state = self._state(study)
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        # A run that already reported the best complete value keeps it: an objective that
        # returns its best value so far would complete with it. Before a finite complete value
        # there is no best to keep, and the run would train to the end.
        if _diverged(study, trial):
            best_final = _best_final(complete, _sign(study))
            if not (math.isfinite(best_final) and _reached(trial, _sign(study), best_final)):
                return _write_decision(
                    study,
                    trial,
                    "pruned:diverged",
                    f"pruned at step {step}: it reported {trial.intermediate_values[step]!r} "
                    "(not finite: a diverged run, or a metric that cannot be computed), where "
                    "finite values had been reported by this step",
                )
        if self._feeds_source_check(study, state, trial, complete):
            self._mark_kept(
                study,
                state,
                trial,
                "full",
                f"in the full group ({_FULL_GROUP}); trained to the end, so that the source "
                "trials can be checked against the study's own complete trials "
                f"({len(complete)} of {_MIN_SOURCE_CHECK_TRIALS})",
            )
            return False
        prediction = self._predict(study, state, trial, complete)
        if prediction is None:
            if self._model_ready(state, complete):
                return False
            if self._wrapped_pruner is not None:
                if not self._wrapped_pruner.prune(study, trial):
                    return False
                wrapped = type(self._wrapped_pruner).__name__
                return _write_decision(
                    study,
                    trial,
                    "pruned:wrapped",
                    f"pruned at step {trial.last_step}: {wrapped} (wrapped_pruner) stopped it "
                    f"before the models were ready ({len(complete)} of "
                    f"{self._n_startup_trials} complete trials)",
                )
            if not complete and self._source_setup(state, [trial]):
                # Workers that start at once have no complete trial to place the rungs on
                # until the first one ends: a source of the same setup places them instead,
                # where its evidence would from that trial on (_early_rungs), or at the quarter.
                # Re-tuning with 4 workers, summed regret at 10 full trainings 3.25 against 4.20
                # (docs/benchmarks-log.md, warm start).
                first, startup = self._source_first_rung(study, state, complete, trial)
                return self._rung_prune(
                    study,
                    trial,
                    self._source_trials,
                    RUNG_FRACTION if first is None else first,
                    startup,
                    by_source=True,
                )
            first_fraction, placed = self._startup_first_rung(study, state, complete, trial)
            if self._rung_prune(study, trial, complete, first_fraction, placed):
                return True
            until = (
                f"the models judge it once {self._n_startup_trials} trials are complete "
                f"({len(complete)} at this check)"
            )
            rungs = rung_steps(complete, first_fraction)
            if in_full_group(study, trial, FULL_FRACTION):
                self._mark_kept(
                    study,
                    state,
                    trial,
                    "full",
                    f"in the full group ({_FULL_GROUP}), which no early rung screens, so that "
                    "the models learn from runs no rung selected, slow starters included; "
                    + until,
                )
            elif not rungs:
                # Workers that start at once run before any trial is complete: a first-wave
                # trial that ends before one does was judged by no rule and said nothing.
                self._mark_kept(
                    study,
                    state,
                    trial,
                    _NO_RUNG,
                    "no trial is complete yet, and the rungs are placed on the complete "
                    f"trials' curves; {until}",
                )
            elif step >= rungs[-1]:
                if self._decided(state, trial):
                    return False
                # The first trial to reach a rung goes on (successive halving's rule): "in the
                # top quarter" read as false beside a better trial that ran before the rungs
                # were placed (the study's first, whose curve placed them).
                passed = (
                    "the first trial to reach the start-up's last rung (a quarter of the "
                    "curve), which goes on as in successive halving"
                    if rung_peers(study, trial, rungs[-1], _sign(study)) == 0
                    else "in the top quarter of the trials at the start-up's last rung (a "
                    "quarter of the curve)"
                )
                self._mark_kept(
                    study, state, trial, "rung", f"{passed}, and no rung follows; {until}"
                )
            return False
        mean, std, probability, decision_step, fit = prediction
        decision, fresh_bar = self._decide(study, state, fit, trial, probability, decision_step)
        beyond = None
        if decision == "pruned:laggard":
            beyond = self._beyond_complete_range(fit, trial, step, _sign(study))
        models = _Decision(
            decision, mean, std, probability, decision_step, step, fit, fresh_bar, beyond
        )
        self._write_attrs(study, state, trial, models)
        first, startup = self._early_rungs(study, state, fit, complete, trial)
        if decision.startswith("pruned"):
            if first is not None:
                # A trial the models stop at a rung is still one of its peers, as in
                # successive halving: were the peers only the trials the models kept, the
                # rung's bar would rise with every stop of theirs, and the rung would stop
                # runs that successive halving keeps (docs/benchmarks-log.md, issue 17).
                with contextlib.suppress(_UpdateFinishedTrialError):
                    rung_stops(study, trial, complete, _sign(study), first, True)
            return True
        if first is None:
            return False
        return self._rung_prune(study, trial, complete, first, startup, models=models)

    def _feeds_source_check(
        self,
        study: Study,
        state: _StudyState,
        trial: FrozenTrial,
        complete: Sequence[FrozenTrial],
    ) -> bool:
        """Whether ``trial`` is trained to the end for the source check
        (:meth:`_source_misleads`): until the study has ``_MIN_SOURCE_CHECK_TRIALS`` complete
        trials, its full group is, as in the start-up without a source. The source's models
        stop most trials before they complete, so the check would come late: with MetaQNN's
        curves as the source, a ResNets study had its second complete trial at its 95th, and
        lost its best run (regret .09 at 100 full trainings against .02 without a source;
        with the full group fed, .01; docs/benchmarks-log.md, warm start)."""
        return (
            bool(self._source_trials)
            and self._wrapped_pruner is None
            and not state.source_dropped
            and len(complete) < _MIN_SOURCE_CHECK_TRIALS
            and in_full_group(study, trial, FULL_FRACTION)
        )

    def _rung_prune(
        self,
        study: Study,
        trial: FrozenTrial,
        complete: Sequence[FrozenTrial],
        first_fraction: float,
        startup: str | None,
        by_source: bool = False,
        models: _Decision | None = None,
    ) -> bool:
        """The rungs (:func:`rung_stops`), with the decision written to the trial
        (``startup``: None where the evidence of complete trials placed them, else why the
        start-up's rungs begin where they do; ``by_source``: ``complete`` are the source
        trials, placing them before the study's first complete trial; ``models``: what the
        models decided at this check, where they decide beside the rungs)."""
        try:
            rung = rung_stops(
                study, trial, complete, _sign(study), first_fraction, by_position=by_source
            )
        except _UpdateFinishedTrialError:
            return False  # another worker (e.g. a heartbeat check) has finished the trial
        if rung is None:
            return False
        step = trial.last_step
        n_startup = self._n_startup_trials
        if by_source:
            why = (
                "its step placed by the source trials' curves, as the study has no complete "
                "trial yet"
            )
            if startup is not None and first_fraction < RUNG_FRACTION:
                why += f"; from 1/{round(1 / first_fraction)} of the curve, {startup}"
        elif startup is not None:
            fit = self._state(study).fit
            if fit is not None and len(complete) >= n_startup:
                # The models could not read enough of them (e.g. extra_features failed).
                why = (
                    f"start-up: the models could read {fit.n_readable} of the "
                    f"{len(complete)} complete trials and need {n_startup}"
                )
            elif fit is not None and fit.with_source and len(self._source_trials) < n_startup:
                why = (
                    f"start-up's rungs: the source's {len(self._source_trials)} complete trials "
                    f"are too few to place them, and the study has {len(complete)} of "
                    f"{n_startup} of its own"
                )
            else:
                why = f"start-up: {len(complete)} of {n_startup} complete trials for the models"
            if first_fraction < RUNG_FRACTION:
                why += f"; {_rungs_at(complete, first_fraction)}, {startup}"
        else:
            why = (
                f"{_rungs_at(complete, first_fraction)}, where the best "
                f"{'source' if len(complete) < n_startup else 'complete'} trials already led"
            )
        # A trial meets a rung at its first check at or past it: one that ran past it before
        # the rungs were placed (a first wave of workers), or that reports sparsely, is judged
        # there at a later step, and "this rung" read as a rung at that step.
        at = (
            "this rung"
            if rung == step
            else f"the rung at step {rung}, met at its first check at or past it"
        )
        reason = f"pruned at step {step}: not in the top quarter of the trials at {at} ({why})"
        if models is None:
            return _write_decision(study, trial, "pruned:rung", reason)
        # The prediction beside the decision is this check's: the one stored with the models'
        # last change of decision can be many steps old, and read as "pruned despite 39%".
        sign = _sign(study)
        return _write_decision(
            study,
            trial,
            "pruned:rung",
            f"{reason}; the other rules kept it ({models.decision}): {models.evidence(sign)}",
            models.prediction_attrs(sign),
        )

    def _decide(
        self,
        study: Study,
        state: _StudyState,
        fit: _Fit,
        trial: FrozenTrial,
        probability: float,
        decision_step: int,
    ) -> tuple[str, float | None]:
        """The decision rule: ``"pruned:<rule>"`` or ``"kept:<rule>"`` (the rule that decided),
        and for ``"pruned:model"`` the bar that stopped the trial where it was what its remaining
        steps would buy as fresh trials (None where it was ``threshold``), for its reason.

        Prune when the chance of beating the best complete trial is below ``threshold`` or
        below what the trial's remaining steps would buy as fresh trials (:meth:`_fresh_bar`),
        a laggard's below ``_LAGGARD_THRESHOLD``, all scaled down over the first tenth of the
        curve, or where the trial is worse than every complete trial at its step by more than
        their range (:meth:`_beyond_complete_range`), unless the median rule keeps the trial,
        it ranks among the best at its step, it is level with the incumbent, or the complete
        trials end here.
        """
        step = trial.last_step
        assert step is not None
        sign = _sign(study)
        if fit.end_step is not None and step >= fit.end_step:
            return "kept:end", None  # the models learn from no later step
        if _level_with_incumbent(fit, trial, step, sign):
            return "kept:incumbent", None
        if _reached(trial, sign, fit.value_to_beat):
            # What made the probability 1, whatever the prediction.
            return "kept:reached-best", None
        scale = self._early_scale(fit, decision_step)
        # Every trial is read at most once per decision, and only where a rule needs them.
        every_trial = functools.cache(lambda: study.get_trials(deepcopy=False))
        bar = self._model_bar(fit, step, scale, probability, every_trial)
        fresh_bar = None
        if probability < bar:
            decision = "pruned:model"
            fresh_bar = bar if bar > self._threshold * scale else None
        elif (
            probability < _LAGGARD_THRESHOLD * scale**2
            and self._below_complete_quantile(fit, trial, step, sign, _LAGGARD_FRACTION)
        ) or self._beyond_complete_range(fit, trial, step, sign) is not None:
            decision = "pruned:laggard"
        else:
            return "kept:model", None
        if not self._below_complete_quantile(fit, trial, step, sign, 0.5):
            return "kept:median", None
        if self._ranks_in_top(state, every_trial(), trial, step, sign):
            return "kept:top", None
        return decision, fresh_bar

    def _model_bar(
        self,
        fit: _Fit,
        step: int,
        scale: float,
        probability: float,
        every_trial: Callable[[], Sequence[FrozenTrial]],
    ) -> float:
        """The model rule's bar for a trial at ``step`` (``scale``: :meth:`_early_scale`):
        ``threshold``, or what the trial's remaining steps would buy as fresh trials
        (:meth:`_fresh_bar`) where that is higher and the models learn from the study's own
        complete trials alone; both times ``scale``.

        ``every_trial`` (the study's trials) is called only where ``probability`` lies between
        ``threshold`` and the highest bar the study's own complete trials allow (the study has
        spent at least their reports), so most decisions read nothing more.
        """
        bar = self._threshold * scale
        if bar == 0.0 or probability < bar or fit.with_source or not fit.steps.size:
            return bar  # 0 turns the model rule off; below it, no higher bar changes anything
        if probability >= self._fresh_bar(fit, step, fit.own_reports) * scale:
            return bar
        spent = sum(len(t.intermediate_values) for t in every_trial())
        return max(bar, self._fresh_bar(fit, step, spent) * scale)

    def _fresh_bar(self, fit: _Fit, step: int, reports: int) -> float:
        """The chance of a new best that the steps a trial at ``step`` still needs would buy if
        spent on fresh trials: its remaining share of the curve over the full trainings the
        study has spent (``reports``, the reports of its trials, over the complete trials'
        distinct steps; fewer reports give a higher bar).

        Of ``n`` trials drawn alike, the last is the best so far with chance ``1 / n``; the
        study has spent ``S`` full trainings on ``n`` trials, so fresh trials find a new best at
        about one per ``S`` full trainings, and ``r`` more full trainings buy a chance of about
        ``r / S``. A trial whose own chance is below that costs more than it is worth: early in
        a study (at a quarter of its curve, ``0.75 / S`` is above the default ``threshold``
        until ``S`` is 37), not later. Summed regret of the 11 corpora, random sampler: 6.85
        against 6.91 on orderings 0-9 and 7.32 against 7.50 on 10-19; TPE: 4.97 against 5.24.
        The exact best was kept in 395 of 440 fixed-trial studies against 400
        (docs/benchmarks-log.md, issue 17). :meth:`_model_bar` applies it only while the models
        learn from the study's own complete trials alone: with source trials in the fit, the
        higher bar made the source's errors cost more (re-tuning at 50 and 100 full trainings:
        .36 and .32 against .27 and .19).
        """
        if fit.steps.size == 0:
            return 0.0
        return (1.0 - _seen_fraction(fit, step)) / max(reports / fit.steps.size, 1.0)

    def _startup_rungs(
        self, study: Study, state: _StudyState, complete: Sequence[FrozenTrial]
    ) -> float | None:
        """Where the start-up's rungs begin (:func:`startup_rung_fraction`), once the first
        trials that reached the quarter have shown where ranks settle; None before."""
        longest = max((len(t.intermediate_values) for t in complete), default=0)
        if longest == 0:
            return None
        with self._lock:
            fraction = state.startup_rungs.get(longest)
        if fraction is None:
            trials = study.get_trials(deepcopy=False)
            fraction = startup_rung_fraction(trials, longest, _sign(study))
            if fraction is None:
                return None
            # The first decision in the study's storage holds for every worker: a worker that
            # decides later can see another first 12 (a lower-numbered trial that reached the
            # quarter late) and would screen with other rungs.
            key = _STARTUP_RUNGS_KEY.format(longest)
            stored = study._storage.get_study_system_attrs(study._study_id).get(key)
            if stored is None:
                study._storage.set_study_system_attr(study._study_id, key, fraction)
            else:
                fraction = float(stored)
            with self._lock:
                state.startup_rungs[longest] = fraction
        return fraction

    def _startup_first_rung(
        self,
        study: Study,
        state: _StudyState,
        complete: Sequence[FrozenTrial],
        trial: FrozenTrial,
    ) -> tuple[float, str]:
        """Where the start-up's rungs begin for ``trial``, and why there."""
        first_fraction = self._startup_rungs(study, state, complete)
        if first_fraction is not None:
            return first_fraction, "where the first trials ranked as at a quarter"
        return startup_first_rung(study, trial), (
            "the early bracket: every other trial, until the first trials show where ranks settle"
        )

    def _early_rungs(
        self,
        study: Study,
        state: _StudyState,
        fit: _Fit,
        complete: Sequence[FrozenTrial],
        trial: FrozenTrial,
    ) -> tuple[float | None, str | None]:
        """Where the rungs beside the models begin (:func:`early_rung_fraction`), or None: no
        rungs, the models decide alone (a rung at a quarter beside them cost the best ResNet:
        .14 regret at 100 full trainings against .01, docs/benchmarks-log.md); and, where the
        start-up's rungs stand in, why they begin there (None otherwise).

        The evidence is the study's own trials once it has ``n_startup_trials`` complete ones,
        and before that the source trials, if they have the study's parameters (the names of
        its complete trials' parameters). How early ranks settle belongs to the training setup,
        which a re-tuned study shares; another search space is another setup: MetaQNN's curves
        would have put a ResNets study's rungs at its first epoch and lost its best run (regret
        .31 at 100 full trainings against .01 without a source). A source needs as many
        complete trials as the study's own evidence does (``n_startup_trials``): with fewer,
        its "best five" are most of the runs its pruner let finish, which led early because it
        kept only runs that led (old studies pruned by successive halving left 2-9 complete
        trials on held-out ResNets and LSTM halves, whose best runs start slowly, and rungs
        from the first report that lost them). The start-up's rungs stand in until the study
        has its own: held-out re-tuning from a successive-halving study, summed regret 6.01
        against 6.21 and 2 cells worse than without a source against 8; a trade, since it costs
        at 10 full trainings where those rungs were right (TaskSet; with TPE 4.78 against 4.15)
        and keeps the run that ends best where they were not (docs/benchmarks-log.md, warm start).
        ``wrapped_pruner`` replaces every rung.
        """
        if self._wrapped_pruner is not None:
            return None, None
        sign = _sign(study)
        if len(complete) >= self._n_startup_trials:
            with self._lock:
                if fit.early_rungs is None:
                    trials = study.get_trials(deepcopy=False)
                    fit.early_rungs = (early_rung_fraction(trials, sign),)
                return fit.early_rungs[0], None
        # A dropped source never gets here: the models then wait for n_startup_trials own ones.
        if not self._source_setup(state, complete):
            return None, None
        return self._source_first_rung(study, state, complete, trial)

    def _source_first_rung(
        self,
        study: Study,
        state: _StudyState,
        complete: Sequence[FrozenTrial],
        trial: FrozenTrial,
    ) -> tuple[float | None, str | None]:
        """Where the rungs begin while a source of the study's setup decides
        (:meth:`_early_rungs`), and why, where the start-up's rungs stand in."""
        sign = _sign(study)
        if len(self._source_trials) < self._n_startup_trials:
            return self._startup_first_rung(study, state, complete, trial)
        with self._lock:
            if sign not in self._source_rungs:
                self._source_rungs[sign] = early_rung_fraction(
                    self._source_trials + self._source_pruned, sign
                )
            return self._source_rungs[sign], None

    def _same_setup(self, trials: Sequence[FrozenTrial]) -> bool:
        """Whether the source trials have the study's parameters: each of ``trials`` (its
        complete trials, or a running one) has the parameter names of some source trial, as
        the branches of a conditional search space do. Where ranks settle and how far the runs
        that learn get belong to the training setup, which a re-tuned study shares and another
        search space does not."""
        return bool(trials) and all(frozenset(t.params) in self._source_params for t in trials)

    def _source_setup(self, state: _StudyState, trials: Sequence[FrozenTrial]) -> bool:
        """Whether source trials, not dropped, are of the study's setup (:meth:`_same_setup`)."""
        return bool(self._source_trials) and not state.source_dropped and self._same_setup(trials)

    def predict(self, study: Study, trial: FrozenTrial) -> tuple[float, float] | None:
        """Predict the final value of a running trial.

        Args:
            study: The study the trial belongs to.
            trial: The trial, e.g. ``study.trials[-1]`` or a trial from ``study.ask()``
                turned into a :class:`~optuna.trial.FrozenTrial`.

        Returns:
            The predicted final value and its standard deviation, in the study's units, or
            :obj:`None` while no model is ready for the trial's last reported step.
        """
        _check_single_objective(study)
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        prediction = self._predict(study, self._state(study), trial, complete)
        if prediction is None:
            return None
        mean, std, _, _, _ = prediction
        return mean * _sign(study), std

    def _state(self, study: Study) -> _StudyState:
        """The state of ``study``, identified by its storage and its id as Optuna's own
        samplers identify it (``study._storage``, ``study._study_id``); never by its name,
        which another storage, or a study re-created under it, may reuse."""
        storage = study._storage
        key = (id(storage), study._study_id)
        with self._lock:
            state = self._studies.get(key)
            if state is None or state.storage() is not storage:
                for dead in [k for k, v in self._studies.items() if v.storage() is None]:
                    del self._studies[dead]
                state = _StudyState(_reference(storage))
                self._studies[key] = state
        return state

    def _model_ready(self, state: _StudyState, complete: Sequence[FrozenTrial]) -> bool:
        """Whether enough complete trials could be read to fit the models."""
        if not self._enough(state, len(complete)):
            return False
        with self._lock:
            return state.fit is None or self._enough(state, state.fit.n_readable)

    def _enough(self, state: _StudyState, n_own: int) -> bool:
        """Whether ``n_own`` readable complete trials of the study's own, with the source trials
        that go with them, are enough to fit on (a best to beat needs one of its own)."""
        return n_own >= 1 and n_own + self._n_source(state, n_own) >= self._n_startup_trials

    def _n_source(self, state: _StudyState, n_own: int) -> int:
        """How many source trials train the models beside ``n_own`` own complete trials."""
        if state.source_dropped:
            return 0
        return _n_source_used(len(self._source_trials), n_own, self._n_startup_trials)

    def _fit_for(self, study: Study) -> _Fit | None:
        """The models currently held for ``study`` (for tests and diagnostics)."""
        return self._state(study).fit

    def _predict(
        self,
        study: Study,
        state: _StudyState,
        trial: FrozenTrial,
        complete: Sequence[FrozenTrial],
    ) -> tuple[float, float, float, int, _Fit] | None:
        """Mean and std (higher is better), the probability of beating the best, the
        checkpoint whose model was used, and the fit it belongs to."""
        if not self._enough(state, len(complete)) or trial.last_step is None:
            return None
        with self._lock:
            fit = self._current_fit(study, state, complete)
            if not self._enough(state, fit.n_readable):
                return None  # the trials left out count as not complete
            checkpoint = _nearest_lower(fit.checkpoints, trial.last_step)
            if checkpoint is None:
                return None
            step_model = self._step_model(state, fit, checkpoint)
        if step_model.model is None:
            return None
        record = self._record(state, trial, _sign(study), "is not pruned at this step")
        if record is None:
            return None
        try:
            with np.errstate(all="ignore"):
                X = step_model.featurizer.transform([record])
                mean_arr, std_arr = step_model.model._predict_checked(X, return_std=True)
        except Exception as e:  # a pruner must never break the study
            self._warn_once(
                state,
                "transform",
                f"SRPPruner could not encode trial {trial.number} ({type(e).__name__}: {e}); "
                "it is not pruned at this step. Further such failures in this study are not "
                "reported.",
            )
            return None
        mean = fit.target_center + fit.target_scale * float(mean_arr[0])
        # A floor in the standardised units, i.e. relative to the complete trials' spread: an
        # absolute one would decide differently on the same study in other units.
        std = fit.target_scale * max(float(std_arr[0]), _MIN_STANDARDISED_STD)
        if not (math.isfinite(mean) and math.isfinite(std)):
            return None
        if _reached(trial, _sign(study), fit.value_to_beat):
            probability = 1.0  # already as good as the best complete trial
        else:
            z = (fit.value_to_beat - mean) / std
            # Infinite degrees of freedom (calibration="spread") give the Gaussian tail.
            probability = float(stdtr(step_model.model.residual_dof_, -z))
        return mean, std, probability, checkpoint, fit

    def _record(
        self, state: _StudyState, trial: FrozenTrial, sign: float, consequence: str
    ) -> CurveRecord | None:
        """The trial as the models see it, or None (with a warning, once per study) where
        its data or the user's ``extra_features`` cannot be turned into numbers."""
        try:
            record = make_record(trial, sign, self._extra_features)
        except Exception as e:  # user code and per-trial data must not break the study
            self._warn_once(
                state,
                "record",
                f"SRPPruner could not read trial {trial.number} ({type(e).__name__}: {e}); it "
                f"{consequence}. Further such failures in this study are not reported.",
            )
            return None
        if self._extra_features is not None:
            if state.n_extra is None:
                state.n_extra = record.extra.size
            elif record.extra.size != state.n_extra:
                # The models pad with 0 and cut to the longest, which reads the features of
                # trials of another length at other places: likely a bug in the callable.
                self._warn_once(
                    state,
                    "extra-size",
                    f"SRPPruner: extra_features returned {record.extra.size} numbers for trial "
                    f"{trial.number} and {state.n_extra} for an earlier one; the models read "
                    "missing ones as 0. Further such trials in this study are not reported.",
                )
        return record

    def _warn_once(self, state: _StudyState, kind: str, message: str) -> None:
        with self._lock:
            if kind in state.warned:
                return
            state.warned.add(kind)
        warnings.warn(message, RuntimeWarning, stacklevel=_user_stacklevel())

    def _current_fit(
        self, study: Study, state: _StudyState, complete: Sequence[FrozenTrial]
    ) -> _Fit:
        fit = state.fit
        sign = _sign(study)
        # The complete trials by number, and the first one's key, which tells a study re-created
        # under the same id: reading every trial's key at every check cost a third of a steady
        # call at 1,000 complete trials.
        checked = (tuple(map(_NUMBER, complete)), _trial_key(complete[0]) if complete else None)
        if fit is not None and checked == state.checked_complete:
            return fit
        keys = frozenset(_trial_key(t) for t in complete)
        if fit is not None and fit.complete_keys <= keys:
            grown = len(keys) - len(fit.complete_keys)
            if grown < max(1.0, _REFIT_FRACTION * len(fit.complete_keys)):
                if fit.n_complete_seen != len(keys):
                    # The best can move between refits; the decision compares against it.
                    fit.best_final, fit.incumbent_curves = self._incumbents(state, complete, sign)
                    fit.n_complete_seen = len(keys)
                state.checked_complete = checked
                return fit
        records = []
        for t in complete:
            key = _trial_key(t)
            if key not in state.complete_records:
                state.complete_records[key] = self._record(
                    state,
                    t,
                    sign,
                    "is left out of the models' training set, and until "
                    f"n_startup_trials={self._n_startup_trials} complete trials can be read the "
                    "start-up rule decides instead of the models",
                )
            cached = state.complete_records[key]
            if cached is not None:
                records.append(cached)
        last_steps = [int(r.steps[-1]) for r in records if r.steps.size]
        # The lower median: the first step by which at least half the complete trials had
        # ended, robust to a few runs much shorter or longer than the rest.
        end_step = sorted(last_steps)[(len(last_steps) - 1) // 2] if last_steps else None
        finals = np.array([r.final for r in records], dtype=np.float64)
        readable = records
        records, finals = self._subsample(records, finals)
        n_own = len(records)
        # The study's own steps: source curves may be longer or numbered otherwise.
        steps = np.unique(np.concatenate([r.steps for r in records] + [np.empty(0, int)]))
        n_source = min(self._n_source(state, n_own), self._max_train_trials - n_own)
        own_steps = _typical_steps(complete)
        source = self._source_subset(state, sign, complete, n_source, own_steps)
        if source and self._source_misleads(
            study, state, sign, records, steps, complete, own_steps
        ):
            source = []
        if source:
            self._warn_renamed(state, complete)
        records = records + source
        own_finals = finals
        finals = np.concatenate([finals, [r.final for r in source]]).astype(np.float64)
        in_space = [r.final for r in source if _in_search_space(r)]
        margin_unit = 0.0
        with np.errstate(all="ignore"):  # values near the float limits are valid input
            target = encode_target(finals)
            # Standardised here, robustly, so that values near the float limits cannot overflow.
            target_center, target_scale = robust_center_scale(target)
            if len(in_space) >= _MIN_MARGIN_RUNS and self._same_setup(complete):
                unit_target = encode_target(np.concatenate([own_finals, in_space]))
                margin_unit = _margin_unit(unit_target, *robust_center_scale(unit_target))
            target = (target - target_center) / target_scale
        best_final, incumbent_curves = self._incumbents(state, complete, sign)
        fit = _Fit(
            complete_numbers=frozenset(t.number for t in complete),
            complete_keys=keys,
            n_complete_seen=len(keys),
            records=records,
            n_own=n_own,
            target=target,
            target_center=target_center,
            target_scale=target_scale,
            best_final=best_final,
            margin=_SOURCE_MARGIN * margin_unit,
            incumbent_curves=incumbent_curves,
            checkpoints=_geometric_subset(steps),
            steps=steps,
            end_step=end_step,
            own=readable,
            own_reports=sum(r.steps.size for r in readable),
        )
        state.fit = fit
        state.checked_complete = checked
        return fit

    def _source_subset(
        self,
        state: _StudyState,
        sign: float,
        complete: Sequence[FrozenTrial],
        n: int,
        own_steps: np.ndarray,
    ) -> list[CurveRecord]:
        """``n`` source trials as the study sees them (encoded with the distributions of its
        ``complete`` trials, read at its steps: ``own_steps``, a typical one's, see
        :meth:`_by_position`), taken evenly over the ranking of their final values, so the best
        and the worst of the source stay represented. How many train the models fades as the
        study's own complete trials accumulate (:meth:`_n_source`)."""
        if n <= 0:
            return []
        records = self._source_records.get(sign)
        if records is None:
            records = []
            for t in self._source_trials:
                try:
                    records.append(make_record(t, sign, self._extra_features))
                except Exception as e:  # the user's callable may not know the source trials
                    self._warn_once(
                        state,
                        "source",
                        f"SRPPruner could not read the source trial with params {t.params} "
                        f"({type(e).__name__}: {e}); it is left out.",
                    )
            records.sort(key=lambda r: -math.inf if r.final is None else r.final)
            self._source_records[sign] = records
        if not records:
            return []
        picks = np.unique(np.round(np.linspace(0, len(records) - 1, min(n, len(records)))))
        distributions: dict[str, BaseDistribution] = {}
        for t in complete:
            distributions.update(t.distributions)
        renumber = self._by_position(own_steps) and not np.array_equal(
            own_steps, self._source_typical_steps
        )
        return [
            _align_to_study(
                records[int(i)],
                distributions,
                (self._source_typical_steps, own_steps) if renumber else None,
            )
            for i in picks
        ]

    def _warn_renamed(self, state: _StudyState, complete: Sequence[FrozenTrial]) -> None:
        """Warn once where a parameter looks renamed between the source and the study: they
        share some names, and a name only the study's complete trials have is of the same kind
        (float, int or categorical) as one only the source trials have. The models cannot match
        them: a fresh user's source with its most telling parameter renamed cost more epochs
        than no source (279, 373 and 331 against 261, 307 and 291 in three studies), without a
        word."""
        if "source-renamed" in state.warned:
            return
        own = {n: type(d) for t in complete for n, d in t.distributions.items()}
        source = self._source_kinds
        # Sharing none is another model class (issue 19's MetaQNN and ResNets), not a rename.
        if not own.keys() & source.keys():
            return
        only_own = sorted(own.keys() - source.keys())
        only_source = sorted(source.keys() - own.keys())
        kinds = {source[n] for n in only_source}
        renamed = [n for n in only_own if own[n] in kinds]
        if renamed:
            self._warn_once(
                state,
                "source-renamed",
                f"SRPPruner's source_trials lack the study's parameters {renamed} and have "
                f"{only_source}, which its trials lack: the models learn nothing about "
                f"{renamed} from them. If a parameter was renamed, pass the source trials with "
                "the new name (optuna.trial.create_trial(params=..., distributions=..., "
                "value=..., intermediate_values=...)).",
            )

    def _by_position(self, own_steps: np.ndarray) -> bool:
        """Whether the source's curves are read by position (``own_steps``: a typical complete
        trial's steps, :func:`_typical_steps`): a typical run of each with as many reports is
        the same training counted otherwise (from 0 or 1001, in iterations). Otherwise the
        source's runs are of another length or reported at other intervals, and step numbers
        are the better guess (a source of shorter runs is dropped: :meth:`_source_misleads`)."""
        return own_steps.size == self._source_typical_steps.size

    def _source_misleads(
        self,
        study: Study,
        state: _StudyState,
        sign: float,
        own: Sequence[CurveRecord],
        steps: np.ndarray,
        complete: Sequence[FrozenTrial],
        own_steps: np.ndarray,
    ) -> bool:
        """Whether the source trials mislead the study; if so they are dropped for good.

        Models trained on the source alone predict, from a quarter of the study's curve, the
        final values of the study's own complete trials (``own``, at least
        ``_MIN_SOURCE_CHECK_TRIALS`` that reached it). If most of them are more than
        ``_SOURCE_CHECK_Z`` predicted standard deviations off, the source is another problem:
        models trained on MetaQNN's curves put ResNets runs a median 4.0-6.7 standard
        deviations off, on a half of the same corpus or another TaskSet task at most 1.4 (3
        runs, 6 draws; docs/benchmarks-log.md, warm start). A calibrated source passes the
        check with probability 0.994 each time it is made, and dropping it only makes the
        study decide from then on as without one. The decision is kept in the study's system
        attributes, so every worker drops it at once.
        """
        # Once dropped, _n_source is 0 and no source reaches this check: only another worker's
        # drop, in the storage, is news here.
        if self._source_dropped_key in study._storage.get_study_system_attrs(study._study_id):
            state.source_dropped = True
            # Each process's user reads its own log: say it here too, once.
            self._warn_once(
                state,
                "source-dropped",
                f"SRPPruner's source_trials were dropped in study {study.study_name!r} by another "
                "worker (its warning says why). Pruning now uses only the study's own trials, as "
                f"without a source (study system attribute {self._source_dropped_key!r}).",
            )
            return True
        if steps.size == 0:
            return False
        why = None if self._by_position(own_steps) else self._misread(own, steps, own_steps)
        if why is not None:
            self._drop_source(study, state, why)
            return True
        checkpoint = int(steps[report_index(steps.size, RUNG_FRACTION)])
        checked = [
            r for r in own if r.final is not None and r.steps.size and r.steps[-1] >= checkpoint
        ]
        if len(checked) < _MIN_SOURCE_CHECK_TRIALS:
            return False
        source = self._source_subset(state, sign, complete, self._n_source(state, 0), own_steps)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                finals = np.array([r.final for r in source + checked], dtype=np.float64)
                target = encode_target(finals)
                center, scale = robust_center_scale(target[: len(source)])
                target = (target - center) / scale
                featurizer = CurveFeaturizer(checkpoint, _MAX_CURVE_POINTS)
                model = SRMEnsemble(
                    self._n_estimators,
                    random_state=self._seed_for_numbers(frozenset(r.number for r in checked)),
                )
                model.fit(featurizer.fit_transform(source), target[: len(source)])
                mean, std = model.predict(featurizer.transform(checked), return_std=True)
                z = np.abs(target[len(source) :] - mean) / np.maximum(std, _MIN_STANDARDISED_STD)
        except Exception:  # the check must not break the study; the source stays
            return False
        if not float(np.median(z)) > _SOURCE_CHECK_Z:
            return False
        # The range names the cause a fresh user met most: an old study whose pruner let only
        # its better runs finish, whose models never saw how a slow run ends.
        low, high = np.nanmin(finals[: len(source)]), np.nanmax(finals[: len(source)])
        outside = int(np.sum((finals[len(source) :] < low) | (finals[len(source) :] > high)))
        lo, hi = sorted((sign * float(low), sign * float(high)))
        self._drop_source(
            study,
            state,
            "a model trained only on them, predicting from the first quarter of each curve, "
            f"was off by a median {float(np.median(z)):.2f} standard deviations (more than "
            f"the limit of {_SOURCE_CHECK_Z:g}) on the study's {len(checked)} complete "
            "trials, so they do not describe this study. The source's complete trials ended "
            f"between {lo:.4g} and {hi:.4g}, {outside} of the study's {len(checked)} outside "
            "that range: a source whose pruner let only its better runs finish, or another "
            "objective, direction, curve length or data, or a search space where the source's "
            "few trials say little (from now on the study decides without it)",
        )
        return True

    def _misread(
        self, own: Sequence[CurveRecord], steps: np.ndarray, own_steps: np.ndarray
    ) -> str | None:
        """Why the source, read by step number (:meth:`_by_position` is False), cannot describe
        the study (``own``: its complete trials' records, ``steps``: their distinct steps,
        ``own_steps``: a typical one's steps), or None where it can."""
        source_steps = self._source_typical_steps
        if own_steps.size and source_steps.size:
            within = int(
                np.count_nonzero((source_steps >= own_steps[0]) & (source_steps <= own_steps[-1]))
            )
            if within < 2:
                # The source's curves hold at most one value in the steps the study decides at
                # (an old study counting from 1000, or in iterations, with another number of
                # reports): its models would judge every run on its parameters, and a first
                # report, alone.
                return (
                    f"a typical one of its complete trials reported {source_steps.size} times at "
                    f"steps {int(source_steps[0])}-{int(source_steps[-1])}, {within} of them "
                    f"within the study's steps {int(own_steps[0])}-{int(own_steps[-1])} (a "
                    f"typical one of the study's reported {own_steps.size} times): with other "
                    "numbers of reports they are read by step number, and the source's curves "
                    "say next to nothing at the steps the study decides at. Pass trials trained "
                    "for as many steps as the study's, counted alike"
                )
        longest = max((r.steps.size for r in own), default=0)
        if self._source_end < steps[-1] and self._source_longest < longest:
            # The final values of a source shorter in both steps and reports are what the
            # study's runs reach partway through: a fresh user's 10-epoch source for a 20-epoch
            # study passed the check of _source_misleads and stopped runs at .93-.95 accuracy on
            # predicted finals of .75-.88. One of the two alone is another count (steps from 0
            # where the study's runs stopped themselves) or other intervals (a report every
            # second epoch). With the objective's own early stopping, the longest of dozens of
            # source runs seldom ends before the study's.
            return (
                f"its complete trials ended by step {self._source_end} after at most "
                f"{self._source_longest} reports, and the study's have reached step "
                f"{int(steps[-1])} after {longest} (read by step number: a typical run of the "
                f"source has {source_steps.size} reports, of the study {own_steps.size}), so its "
                "final values are what the study's runs reach partway through. Pass trials "
                "trained for as many steps as the study's, counted alike"
            )
        return None

    def _drop_source(self, study: Study, state: _StudyState, why: str) -> None:
        """Drop the source trials for good, for every worker (the study's system attributes),
        with one warning that says ``why``."""
        state.source_dropped = True
        study._storage.set_study_system_attr(study._study_id, self._source_dropped_key, True)
        self._warn_once(
            state,
            "source-dropped",
            f"SRPPruner dropped its source_trials in study {study.study_name!r}: {why}. "
            "Pruning now uses only the study's own trials, as without a source (study system "
            f"attribute {self._source_dropped_key!r}).",
        )

    def _incumbents(
        self, state: _StudyState, complete: Sequence[FrozenTrial], sign: float
    ) -> tuple[float, list[_Curve]]:
        """The best final value of the complete trials (the value each was told with), and
        the cumulative curves of the trials that reached it."""
        best = _best_final(complete, sign)
        if not math.isfinite(best):
            return best, []
        curves = [
            self._finished_curve(state, t, sign)
            for t in complete
            if t.value is not None and t.value * sign == best
        ]
        return best, curves

    def _finished_curve(self, state: _StudyState, trial: FrozenTrial, sign: float) -> _Curve:
        key = _trial_key(trial)
        curve = state.finished_curves.get(key)
        if curve is None:
            curve = _curve(trial, sign)
            state.finished_curves[key] = curve
        return curve

    def _subsample(
        self, records: list[CurveRecord], finals: np.ndarray
    ) -> tuple[list[CurveRecord], np.ndarray]:
        n = len(records)
        if n <= self._max_train_trials:
            return records, finals
        order = np.argsort(-np.where(np.isfinite(finals), finals, -np.inf), kind="stable")
        n_top = self._max_train_trials // 4
        # Seeded by the pruner's seed and the set's size: the same subsample in every worker.
        rng = np.random.RandomState(((0 if self._seed is None else self._seed) * 31 + n) % 2**32)
        rest = rng.choice(order[n_top:], self._max_train_trials - n_top, replace=False)
        keep = np.sort(np.concatenate([order[:n_top], rest]))
        return [records[i] for i in keep], finals[keep]

    def _step_model(self, state: _StudyState, fit: _Fit, checkpoint: int) -> _StepModel:
        cached = fit.step_models.get(checkpoint)
        if cached is not None:
            return cached
        featurizer = CurveFeaturizer(checkpoint, _MAX_CURVE_POINTS)
        # Seeded by the checkpoint's rank, not its step number, so that the decisions do not
        # depend on where the study's step numbering starts.
        rank = int(np.searchsorted(fit.checkpoints, checkpoint))
        # At max_train_trials a refit redraws a training set of the same size, and the kernel's
        # C and width, chosen by cross-validation on one such set, are chosen again only once
        # the study has twice the complete trials it had then: the search was half of a
        # refit's cost at 1,000 complete trials (docs/distributed.md).
        choice = state.kernel_choices.get(checkpoint)
        at_cap = fit.n_own >= self._max_train_trials
        kernel = choice[1] if at_cap and choice and fit.n_readable < 2 * choice[0] else {}
        # The decision asks for the chance of ending above the best: the upper tail. With
        # "local", one run that ended far below its prediction (on TaskSet GRU128, a loss of
        # 1.3 where chance is 0.69) widened the std of every prediction near the bottom, and
        # runs at chance for the whole curve kept a probability of .07-.12 of beating a best of
        # 0.48 to the end. While source trials train the models, the residuals are mostly the
        # source's, and the study's runs end further from the predictions than they show: the
        # two-sided spread stays (held-out re-tuning, summed regret 3.77 with the upper tail
        # against 3.55; docs/benchmarks-log.md, issue 17).
        model: SRMEnsemble | None = SRMEnsemble(
            self._n_estimators,
            nu=kernel.get("nu"),
            C=kernel.get("C"),
            gamma=kernel.get("gamma"),
            calibration="local" if fit.with_source else "upper",
            random_state=np.random.RandomState(
                (self._seed_for_numbers(fit.complete_numbers) + rank) % 2**32
            ),
        )
        # A trial that had not reported by the checkpoint (sparse or late-starting steps) would
        # enter its features with a value from after it, which no running trial there has.
        reported = np.array([r.steps.size > 0 and r.steps[0] <= checkpoint for r in fit.records])
        records = [r for r, ok in zip(fit.records, reported) if ok]
        try:
            if len(records) < 2:
                model = None  # nothing to learn from at this step: no decision by the models
            else:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    X = featurizer.fit_transform(records)
                    assert model is not None
                    model.fit(X, fit.target[reported])
        except Exception as e:  # a pruner must never break the study
            model = None
            self._warn_once(
                state,
                "fit",
                f"SRPPruner could not fit the model for step {checkpoint} on "
                f"{len(records)} complete trials ({type(e).__name__}: {e}); trials "
                "are not pruned by it.",
            )
        if model is not None and at_cap and not kernel:
            state.kernel_choices[checkpoint] = (fit.n_readable, dict(model.best_params_))
        step_model = _StepModel(featurizer, model)
        fit.step_models[checkpoint] = step_model
        return step_model

    def _early_scale(self, fit: _Fit, checkpoint: int) -> float:
        """The factor on the thresholds: the share of the curve at ``checkpoint`` (the model's,
        at or before the trial's step) over a tenth, capped at 1 (``10 k / n`` where it is the
        ``k``-th of the complete trials' ``n`` distinct steps).

        The first values say least about the final one and a model trained on few curves
        does not know how little: at the first of 100 reports it must be ten times as sure.
        By share of the curve, not by report: the first of 10 reports is already a tenth.
        """
        if fit.steps.size == 0:
            return 1.0
        return min(1.0, _seen_fraction(fit, checkpoint) / _FULL_THRESHOLD_FRACTION)

    def _below_complete_quantile(
        self, fit: _Fit, trial: FrozenTrial, step: int, sign: float, q: float
    ) -> bool:
        """Whether the value the trial reported at ``step`` is worse than the ``q`` quantile of
        the complete trials' values at ``step`` (their last report at or before it).

        With ``q = 0.5`` this is MedianPruner's rule, the median guard: both rules must agree,
        so a configuration that either keeps is kept. The models cannot learn what they never
        saw complete (e.g. TaskSet's late learners, whose curves sit at chance as long as most
        runs' do), and the median rule cannot see crossing curves. With ``q =
        _LAGGARD_FRACTION`` it finds the laggards.

        The current value, not MedianPruner's best value so far: a run on a plateau with
        jitter (a TaskSet run at chance level) has a best so far above the plateau by the
        jitter, so where half the complete runs end on that plateau every such run would be
        kept to the end; its current value is above the median about half the time. A run that
        is learning is above the plateau at every check.
        """
        with self._lock:
            quantile = _complete_quantile(fit, step, q)
        return _current_value(trial, step, sign) < quantile

    def _beyond_complete_range(
        self, fit: _Fit, trial: FrozenTrial, step: int, sign: float
    ) -> float | None:
        """The lowest of the study's own complete trials' values at ``step`` (higher is
        better) where the value the trial reported there is below it by more than their range
        there (highest minus lowest, over at least ``_MIN_RANGE_TRIALS`` finite values): a run
        unlike any the models learned from, a laggard whatever they predict. None otherwise."""
        with self._lock:
            values = _complete_values_at(fit, step)
        finite = values[np.isfinite(values)]
        if finite.size < _MIN_RANGE_TRIALS:
            return None
        lowest = float(finite.min())
        return (
            lowest if _current_value(trial, step, sign) < lowest - float(np.ptp(finite)) else None
        )

    def _ranks_in_top(
        self,
        state: _StudyState,
        trials: Sequence[FrozenTrial],
        trial: FrozenTrial,
        step: int,
        sign: float,
    ) -> bool:
        """Whether ``trial``'s best value up to ``step`` is in the top ``_KEEP_TOP_FRACTION`` of
        the trials, of any state, that have reported at or after ``step``.

        The models learn only from complete trials; a trial that leads its peers on the
        evidence of every trial's partial curve keeps running, so the models are fed good
        complete trials and cannot starve themselves by pruning all they have not seen.
        """
        own = _best_up_to(_curve(trial, sign), step)
        n_others = n_better = 0
        # Enough better trials settle it whatever the rest: most candidates are bad, so this
        # ends the scan early in large studies.
        most_better_allowed = _KEEP_TOP_FRACTION * len(trials)
        with self._lock:
            for other in trials:
                if n_better > most_better_allowed:
                    return False
                if other.number == trial.number:
                    continue
                # Finished trials never change: their curves are computed once, and their last
                # step read from it (``last_step`` scans the reports).
                if other.state.is_finished():
                    curve = self._finished_curve(state, other, sign)
                else:
                    curve = _curve(other, sign)
                # A last step of 0 is a step like any other, not a missing one.
                if not curve[0] or curve[0][-1] < step:
                    continue
                n_others += 1
                n_better += _best_up_to(curve, step) > own
        return (n_better + 1) / (n_others + 1) <= _KEEP_TOP_FRACTION

    def _seed_for_numbers(self, numbers: frozenset[int]) -> int:
        # Reproducible for a given seed and training set, the same in every worker.
        base = 0 if self._seed is None else self._seed
        return (base * 1_000_003 + len(numbers) * 7919 + sum(numbers)) % 2**32

    def _written(self, state: _StudyState, trial: FrozenTrial) -> dict[str, object]:
        """The ``srp:`` attributes this process has written to ``trial`` (or found on it): a
        trial's cached copy in ``should_prune()`` does not show the user attributes written
        since it started."""
        cache_key = (trial.number, trial.datetime_start)
        with self._lock:
            written = state.written_attrs.pop(cache_key, None)
            if written is None:
                written = {k: v for k, v in trial.user_attrs.items() if k.startswith(ATTR_PREFIX)}
            state.written_attrs[cache_key] = written
            while len(state.written_attrs) > _MAX_REMEMBERED_TRIALS:
                state.written_attrs.popitem(last=False)
        return written

    def _decided(self, state: _StudyState, trial: FrozenTrial) -> bool:
        """Whether a decision is written to ``trial`` (by this process, or found on it), other
        than ``kept:no-rung``, which the rungs replace once placed."""
        decision = self._written(state, trial).get(ATTR_PREFIX + "decision")
        return decision not in (None, _PROVISIONAL)

    def _mark_kept(
        self, study: Study, state: _StudyState, trial: FrozenTrial, rule: str, why: str
    ) -> None:
        """Write ``kept:<rule>`` and ``why`` where no rule has judged ``trial`` yet: a trial the
        start-up trains to the end (the full group, or past the last rung) said nothing of why,
        and a run at chance trained to the end looked like a fault. It stands until a rule
        judges the trial, and is not rewritten at every check; ``kept:no-rung`` stands only
        until the rungs are placed, and gives way to the start-up's other marks."""
        written = self._written(state, trial)
        key = ATTR_PREFIX + "decision"
        with self._lock:
            previous = written.get(key)
            if previous is not None and (previous != _PROVISIONAL or rule == _NO_RUNG):
                return
            written[key] = f"kept:{rule}"
        _write_decision(study, trial, f"kept:{rule}", f"kept at step {trial.last_step}: {why}")

    def _write_attrs(
        self, study: Study, state: _StudyState, trial: FrozenTrial, decision: _Decision
    ) -> None:
        """Store the decision, why, and the prediction it rests on, when the decision changed.

        One check's attributes are written together, so the prediction beside a decision is
        the one that made it. A trial's attributes change only when its decision does, so a
        study on a shared database is not loaded by a write per check.
        """
        written = self._written(state, trial)
        previous = written.get(ATTR_PREFIX + "decision")
        if previous == decision.decision or (decision.decision == "kept:end" and previous):
            # Every trial as long as the complete ones is kept:end at its last report; the
            # decision that kept it until then says why it ran to the end (a fresh user saw
            # kept:end on every complete trial, over a median guard's or a reached best's).
            return
        sign = _sign(study)
        attrs = {
            "decision": decision.decision,
            "reason": decision.reason(sign),
            **decision.prediction_attrs(sign),
        }
        for name, value in attrs.items():
            key = ATTR_PREFIX + name
            if written.get(key) != value:
                try:
                    study._storage.set_trial_user_attr(trial._trial_id, key, value)
                except _UpdateFinishedTrialError:
                    return  # another worker (e.g. a heartbeat check) has finished the trial
                written[key] = value


@dataclass(frozen=True)
class _Decision:
    """What :meth:`SRPPruner.prune` decided about a trial at one check, and on what evidence."""

    decision: str  # "pruned:<rule>" or "kept:<rule>"
    mean: float  # higher is better
    std: float
    probability: float
    checkpoint: int  # the step whose model was used
    step: int  # the trial's step
    fit: _Fit
    # Where the bar was what the remaining steps would buy as fresh trials (_fresh_bar), the
    # bar; None where it was ``threshold``.
    fresh_bar: float | None = None
    # Where a laggard was stopped for being below every complete trial at its step by more
    # than their range there (_beyond_complete_range), the lowest complete value there.
    beyond: float | None = None

    def prediction_attrs(self, sign: float) -> dict[str, float | int]:
        """The prediction's user attributes (without the ``srp:`` prefix), in the study's
        units."""
        return {
            "predicted_value": _round(self.mean * sign),
            "predicted_std": _round(self.std),
            "probability": _round(self.probability),
            "step": int(self.checkpoint),
        }

    def evidence(self, sign: float) -> str:
        """The prediction and the chance to beat the best, as a reason quotes them."""
        return f"{self._predicted(sign)}, {self._chance(sign)}"

    def _predicted(self, sign: float) -> str:
        # From the values stored beside it (prediction_attrs), so that the two read alike: the
        # unrounded mean 0.599449 read "0.5994" beside a stored 0.59945.
        attrs = self.prediction_attrs(sign)
        return f"predicted {_fmt(attrs['predicted_value'])} ± {attrs['predicted_std']:.2g}"

    def _by(self) -> str:
        # The margin a source sets (_SOURCE_MARGIN), in the study's units.
        return f" by {self.fit.margin:.2g}" if self.fit.margin > 0.0 else ""

    def _chance(self, sign: float) -> str:
        best = _fmt(self.fit.best_final * sign)
        by = self._by()
        chance = f"chance to beat the best ({best})"
        chance += f"{by} or more: " if by else " "
        return chance + _fmt_probability(self.probability)

    def reason(self, sign: float) -> str:
        """One line a user reads on optuna-dashboard, in the study's units."""
        predicted = self._predicted(sign)
        evidence = self.evidence(sign)
        best = _fmt(self.fit.best_final * sign)
        by = self._by()
        verb, rule = self.decision.split(":", 1)
        head = f"{verb} at step {self.step}: "
        if rule == "model":
            if self.fresh_bar is not None:
                return (
                    f"{head}{evidence}, below the chance of a new best that its "
                    f"remaining steps would buy spent on fresh trials "
                    f"({_fmt_probability(self.fresh_bar)})"
                )
            return f"{head}{evidence}"
        if rule == "laggard" and self.beyond is not None:
            return (
                f"{head}worse than every complete trial at this step (the worst: "
                f"{_fmt(self.beyond * sign)}) by more than their range there, a run unlike any "
                f"the models learned from; {evidence}"
            )
        if rule == "laggard":
            # Not "behind most": with one complete trial the quantile is that trial.
            return (
                f"{head}worse than all but the worst {_LAGGARD_FRACTION:.0%} of the complete "
                f"trials at this step; {evidence}"
            )
        if rule == "median":
            return f"{head}{evidence}, but not behind the complete trials' median here"
        if rule == "top":
            return f"{head}{evidence}, but among the best trials at this step"
        if rule == "end":
            return (
                f"{head}at the step by which the complete trials end (half of them, at least), "
                f"and the models judge no later one; {predicted}"
            )
        if rule == "reached-best":
            done = "beaten" if by else "reached"
            return f"{head}has already {done} the best complete value ({best}){by}; {predicted}"
        # The incumbent's value at this step, which the trial's was compared with.
        there_value = _incumbent_value_at(self.fit, self.step)
        there = "none" if there_value is None else _fmt(there_value * sign)
        ahead = f"ahead{by}" if by else "level or ahead"
        return (
            f"{head}{ahead} of the best complete trial at this step ({there} there; it ended at "
            f"{best}); {predicted}"
        )


def _user_stacklevel() -> int:
    """The ``stacklevel``, for a :func:`warnings.warn` in the function that calls this one, of
    the first frame outside optuna_srp and optuna, so that the warning names the user's line
    (their ``should_prune()``), however deep in the pruner it was raised."""
    level = 2
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in (
        "optuna_srp",
        "optuna",
    ):
        level, frame = level + 1, frame.f_back
    return level


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _fmt_probability(p: float) -> str:
    return f"{p:.1%}" if p >= 0.001 else "< 0.1%"


def _reached(trial: FrozenTrial, sign: float, best_final: float) -> bool:
    """Whether a finite value the trial reported is at least the best complete final value."""
    values = [sign * v for v in trial.intermediate_values.values() if math.isfinite(v)]
    return max(values, default=-math.inf) >= best_final


def _usable_source_trials(
    source_trials: Sequence[FrozenTrial] | None,
) -> tuple[tuple[FrozenTrial, ...], tuple[FrozenTrial, ...]]:
    """The source trials the models can learn from (complete ones) and the pruned ones, whose
    partial curves are evidence of where ranks settle (:func:`early_rung_fraction`); the others
    are skipped with one warning.

    Raises:
        TypeError: If ``source_trials`` is not a sequence of :class:`FrozenTrial`.
    """
    if source_trials is None:
        return (), ()
    if isinstance(source_trials, FrozenTrial):
        raise TypeError(
            "source_trials must be a sequence of FrozenTrial or None, but got one FrozenTrial "
            f"(number {source_trials.number}); pass [trial]."
        )
    if isinstance(source_trials, (str, bytes)) or not isinstance(source_trials, Sequence):
        raise TypeError(
            "source_trials must be a sequence of FrozenTrial or None, but got "
            f"source_trials={reprlib.repr(source_trials)} ({type(source_trials).__name__})"
            + (f"; pass {_SOURCE_CALL}." if isinstance(source_trials, Study) else ".")
        )
    usable: list[FrozenTrial] = []
    partial: list[FrozenTrial] = []
    skipped: list[str] = []
    for i, t in enumerate(source_trials):
        if not isinstance(t, FrozenTrial):
            raise TypeError(
                "source_trials must hold FrozenTrial objects, but source_trials"
                f"[{i}] is {reprlib.repr(t)} ({type(t).__name__})."
            )
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            skipped.append(f"source_trials[{i}] ({t.state.name})")
        elif not t.intermediate_values:
            skipped.append(f"source_trials[{i}] (no intermediate values)")
        elif t.state == TrialState.PRUNED:
            partial.append(t)
        elif t.values is None or len(t.values) != 1:
            skipped.append(f"source_trials[{i}] (multi-objective)")
        elif not math.isfinite(t.values[0]):
            skipped.append(f"source_trials[{i}] (value {t.values[0]})")
        else:
            usable.append(t)
    if skipped:
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        warnings.warn(
            f"SRPPruner skips {len(skipped)} of {len(source_trials)} source_trials, which are "
            "neither pruned trials with a learning curve nor complete single-objective trials "
            f"with a learning curve and a finite value: {', '.join(skipped[:5])}{more}. Pass "
            f"an earlier study's complete and pruned trials, e.g. {_SOURCE_CALL}.",
            UserWarning,
            stacklevel=3,
        )
    return tuple(usable), tuple(partial)


def _digest(trials: Sequence[FrozenTrial]) -> str:
    """A short fingerprint of ``trials``, whatever their order: the same in every worker that
    passes the same trials, another for another set."""
    rows = sorted(
        repr((sorted(t.params.items()), t.value, sorted(t.intermediate_values.items())))
        for t in trials
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:12]


def _n_source_used(n_source: int, n_own: int, n_startup_trials: int) -> int:
    """How many source trials train the models beside ``n_own`` complete trials of the study.

    They stand in for the start-up trials the study does not have yet: ``5 x
    n_startup_trials`` while it has none of its own, five fewer for each own complete trial,
    none from its ``n_startup_trials``-th on. From then on the study decides on its own
    evidence, as it would without a source. That can come late or never: the source's models
    stop most runs early, and 39 of 110 held-out re-tuning studies never had 10 complete trials;
    training the full group to the end until then (not only until the source check) made them
    reach it (4 of 110 never did) and cost more at 10 and 25 full trainings than it saved
    (summed regret 4.51 against 3.94, docs/benchmarks-log.md, warm start). Letting the budget
    spent fade the source too (each full training past ``n_startup_trials`` standing in for an
    own complete trial) cost .11 and .07 at 25 full trainings on two sets of re-tuning
    orderings; the cells where a source does worse than none come from its first decisions.
    A slower fade (a share falling as ``n_startup_trials / (n_startup_trials + n_own)``) kept a
    source that over-rates late learners in every fit: on TaskSet GRU128 re-tuning it pruned
    almost nothing, normalized regret .47 and .35 at 50 and 100 full trainings against .17
    and .00 without a source (docs/benchmarks-log.md, warm start).
    """
    return min(n_source, 5 * max(n_startup_trials - n_own, 0))


def _typical_steps(trials: Sequence[FrozenTrial]) -> np.ndarray:
    """The report steps of a typical trial: one with the lower median number of reports."""
    curves = sorted((sorted(t.intermediate_values) for t in trials), key=len)
    return np.array(curves[(len(curves) - 1) // 2] if curves else [], dtype=np.int64)


def _renumbered(steps: np.ndarray, source: np.ndarray, study: np.ndarray) -> np.ndarray:
    """``steps`` of the source's numbering in the study's: piecewise linear through the
    typical trials' steps (``source`` to ``study``, as many of each), linear beyond them."""
    x = steps.astype(np.float64)
    if source.size == 1:
        return np.round(x - source[0] + study[0]).astype(np.int64)
    y = np.interp(x, source, study)
    below, above = x < source[0], x > source[-1]
    y[below] = study[0] + (x[below] - source[0]) * (study[1] - study[0]) / (source[1] - source[0])
    y[above] = study[-1] + (x[above] - source[-1]) * (study[-1] - study[-2]) / (
        source[-1] - source[-2]
    )
    return np.round(y).astype(np.int64)


def _align_to_study(
    record: CurveRecord,
    distributions: dict[str, BaseDistribution],
    steps_map: tuple[np.ndarray, np.ndarray] | None = None,
) -> CurveRecord:
    """A source trial's record with only the parameters the study shares, encoded with the
    study's distributions (a changed range reads the same value at the same place), and with
    ``steps_map`` (the typical source and study steps) its curve in the study's step numbers."""
    if steps_map is not None and record.steps.size:
        steps = _renumbered(record.steps, *steps_map)
        # Steps that round to one study step keep the last value reported there.
        last = steps.size - 1 - np.unique(steps[::-1], return_index=True)[1]
        record = dataclasses.replace(record, steps=steps[last], values=record.values[last])
    params: dict[str, Any] = {}
    dists: dict[str, BaseDistribution] = {}
    for name, value in record.params.items():
        dist = distributions.get(name)
        if dist is None:
            continue
        if isinstance(dist, CategoricalDistribution):
            if value not in dist.choices:
                continue
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        params[name] = value
        dists[name] = dist
    return dataclasses.replace(record, params=params, distributions=dists)


def _in_search_space(record: CurveRecord) -> bool:
    """Whether a source trial's parameters that the study shares (:func:`_align_to_study`
    kept only categorical values among the study's choices) lie within its numeric ranges."""
    for name, value in record.params.items():
        dist = record.distributions[name]
        if isinstance(dist, (FloatDistribution, IntDistribution)) and not (
            dist.low <= value <= dist.high
        ):
            return False
    return True


def _curve(trial: FrozenTrial, sign: float) -> _Curve:
    """A trial's sorted steps, its best finite value up to each and its value at each
    (non-finite as ``-inf``), higher is better.

    Plain lists: they are searched one step at a time, where numpy's per-call cost dominates.
    """
    steps: list[int] = []
    best: list[float] = []
    values: list[float] = []
    running = -math.inf
    for step, value in sorted(trial.intermediate_values.items()):
        value = float(value) * sign
        if not math.isfinite(value):
            value = -math.inf
        running = max(running, value)
        steps.append(step)
        best.append(running)
        values.append(value)
    return steps, best, values


def _level_with_incumbent(fit: _Fit, trial: FrozenTrial, step: int, sign: float) -> bool:
    """Whether the value ``trial`` reported at ``step`` is at least that of a best complete
    trial at the same step (its last report at or before it), plus ``fit.margin``.

    Such a trial is level with the incumbent on all the evidence so far, and its chance of
    ending at least as well is about one half, whatever the models say: a model trained on
    few curves like the incumbent's shrinks them towards the rest, and a late learner that
    ended best may be behind most complete trials at this step.
    """
    value = trial.intermediate_values.get(step)
    if value is None or not math.isfinite(value):
        return False
    there = _incumbent_value_at(fit, step)
    return there is not None and float(value) * sign >= there + fit.margin


def _margin_unit(target: np.ndarray, center: float, scale: float) -> float:
    """How far the runs that learned got (``target``: encoded final values, higher is better;
    ``center``, ``scale``: their :func:`robust_center_scale`): the 10-90% range ``scale``, or
    where it is smaller (under a tenth of the runs learned), the distance from the median up to
    the 95th percentile. Call under ``np.errstate(all="ignore")``."""
    finite = target[np.isfinite(target)]
    top = float(np.percentile(finite, 95)) - center if finite.size else 0.0
    return max(scale, top)


def _incumbent_value_at(fit: _Fit, step: int) -> float | None:
    """The lowest value a best complete trial had at ``step`` (its last report at or before
    it), higher is better: the value a trial at ``step`` must reach to be level with the
    incumbent (:func:`_level_with_incumbent`); None before their first reports."""
    values = [
        values[i]
        for steps, _, values in fit.incumbent_curves
        if (i := bisect.bisect_right(steps, step) - 1) >= 0
    ]
    return min(values, default=None)


def _rungs_at(complete: Sequence[FrozenTrial], first_fraction: float) -> str:
    """Where the rungs are, in a reason: their steps, not fractions of the curve ("from 1/256
    of the curve" said nothing on a curve of 25 reports)."""
    return "rungs at steps " + ", ".join(str(s) for s in rung_steps(complete, first_fraction))


# The start-up's mark on a trial checked before any trial is complete, when no rung exists:
# the only decision that another mark replaces (_decided, _mark_kept).
_NO_RUNG = "no-rung"
_PROVISIONAL = f"kept:{_NO_RUNG}"

# What the full group is, in a reason.
_FULL_GROUP = "trials trained to the end, at most a quarter of the steps trained"


def _write_decision(
    study: Study,
    trial: FrozenTrial,
    decision: str,
    reason: str,
    prediction: Mapping[str, float | int] | None = None,
) -> bool:
    """Write a decision that no prediction made (a rung, a diverged run, the full group), its
    reason and, where the models had judged the trial at this check, their ``prediction``
    (:meth:`_Decision.prediction_attrs`) to the trial; True, or False if another worker (e.g.
    a heartbeat check) has finished it."""
    attrs = {"decision": decision, "reason": reason, **(prediction or {})}
    try:
        for name, value in attrs.items():
            study._storage.set_trial_user_attr(trial._trial_id, ATTR_PREFIX + name, value)
    except _UpdateFinishedTrialError:
        return False
    return True


def _diverged(study: Study, trial: FrozenTrial) -> bool:
    """Whether ``trial`` has diverged: its last reported value is not finite while a finite
    value was reported at or before that step, by another trial or earlier by this one (so a
    value that is undefined early in every run, by design, is no divergence, and a study's
    first trial is judged on its own curve). No run of the shared curves reported a finite
    value after a non-finite one (413 of the 6,000 TaskSet runs diverged, 298 at their first
    report), and the full group would otherwise train such a run to the end, for a failed
    trial that feeds no model (docs/benchmarks-log.md, issue 17). Optuna's median and percentile
    pruners stop a trial whose values are all NaN."""
    step = trial.last_step
    if step is None or math.isfinite(trial.intermediate_values[step]):
        return False
    # The trial's own value at ``step`` is not finite, so only its earlier ones can count.
    return any(
        any(s <= step and math.isfinite(v) for s, v in other.intermediate_values.items())
        for other in study.get_trials(deepcopy=False)
    )


_NUMBER = operator.attrgetter("number")


def _trial_key(trial: FrozenTrial) -> _TrialKey:
    return trial.number, trial.datetime_complete


def _reference(storage: object) -> Callable[[], object | None]:
    try:
        return weakref.ref(storage)
    except TypeError:  # not weakly referenceable: hold it, so that its id cannot be reused
        return lambda: storage


def _current_value(trial: FrozenTrial, step: int, sign: float) -> float:
    """The value ``trial`` reported at ``step``, higher is better; -inf where it is missing or
    not finite (the worst), as the median, laggard and range rules read it."""
    value = trial.intermediate_values.get(step)
    return sign * value if value is not None and math.isfinite(value) else -math.inf


def _complete_values_at(fit: _Fit, step: int) -> np.ndarray:
    """The study's own complete trials' values at ``step`` (their last report at or before
    it), non-finite or missing ones as ``-inf``, every readable one, not only the models'
    subsample (source trials may be in other units). Call under the lock."""
    values = fit.values_at_step.get(step)
    if values is None:
        if fit.own_index is None:
            fit.own_index = _ReportIndex.of(fit.own)
        values = fit.own_index.at(step)
        fit.values_at_step[step] = values
    return values


@dataclass(frozen=True)
class _ReportIndex:
    """Every record's reports in one increasing array of keys (record ``i``'s report at the
    ``k``-th distinct step of all records is ``i * len(steps) + k``), so that all records'
    last values at or before a step are one ``searchsorted``: one per record took 4 ms a step
    at 1,000 complete trials of 200 reports, a third of a refit there (``benchmark cost``).
    Steps are numbered by rank, so large step numbers cannot overflow the keys."""

    steps: np.ndarray  # the distinct steps of all records, sorted
    keys: np.ndarray
    values: np.ndarray  # the reports' values, NaN where not finite
    starts: np.ndarray  # each record's first position in ``keys``

    @classmethod
    def of(cls, records: Sequence[CurveRecord]) -> _ReportIndex:
        sizes = np.array([len(r.steps) for r in records], dtype=np.int64)
        starts = np.cumsum(sizes) - sizes
        if not sizes.sum():
            empty = np.empty(0, dtype=np.int64)
            return cls(empty, empty, np.empty(0), starts)
        steps, rank = np.unique(
            np.concatenate([np.asarray(r.steps, dtype=np.int64) for r in records]),
            return_inverse=True,
        )
        owner = np.repeat(np.arange(len(records), dtype=np.int64), sizes)
        values = np.concatenate([np.asarray(r.values, dtype=np.float64) for r in records])
        return cls(steps, owner * steps.size + rank.ravel(), values, starts)

    def at(self, step: int) -> np.ndarray:
        """Each record's last value at or before ``step``; ``-inf`` where it has none there
        or it is not finite."""
        rank = int(np.searchsorted(self.steps, step, side="right")) - 1
        queries = np.arange(self.starts.size, dtype=np.int64) * self.steps.size + rank
        found = np.searchsorted(self.keys, queries, side="right") - 1
        out = np.full(self.starts.size, -np.inf)
        # A key before a record's first one is another record's: it has no report there.
        own = found >= self.starts
        out[own] = self.values[found[own]]
        out[~np.isfinite(out)] = -np.inf
        return out


def _complete_quantile(fit: _Fit, step: int, q: float) -> float:
    """The ``q`` quantile of the complete trials' finite values at ``step`` (``-inf`` if none
    is finite). Call under the lock."""
    quantile = fit.quantile_at_step.get((step, q))
    if quantile is None:
        at_step = _complete_values_at(fit, step)
        finite = at_step[np.isfinite(at_step)]
        with np.errstate(all="ignore"):  # values near the float limits are valid
            quantile = float(np.quantile(finite, q)) if finite.size else -math.inf
        fit.quantile_at_step[(step, q)] = quantile
    return quantile


def _seen_fraction(fit: _Fit, step: int) -> float:
    """The share of the complete trials' distinct steps at or before ``step`` (``fit.steps``
    not empty): how far along the curve a trial at ``step`` is."""
    return int(np.searchsorted(fit.steps, step, side="right")) / fit.steps.size


def _best_up_to(curve: _Curve, step: int) -> float:
    steps, best, _ = curve
    i = bisect.bisect_right(steps, step) - 1
    return best[i] if i >= 0 else -math.inf


def _best_final(complete: Sequence[FrozenTrial], sign: float) -> float:
    values = [t.value * sign for t in complete if t.value is not None]
    finite = [v for v in values if math.isfinite(v)]
    return max(finite, default=-math.inf)


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def _sign(study: Study) -> float:
    return -1.0 if study.direction == StudyDirection.MINIMIZE else 1.0


def _check_single_objective(study: Study) -> None:
    if len(study.directions) > 1:
        raise NotImplementedError(
            "SRPPruner supports single-objective studies only, but the study has "
            f"{len(study.directions)} objectives."
        )


def _geometric_subset(steps: np.ndarray) -> np.ndarray:
    if steps.size == 0:
        return steps
    ratio = _CHECKPOINT_RATIO
    while True:
        positions = {0, steps.size - 1}
        p = 1.0
        while p < steps.size:
            positions.add(int(round(p)) - 1)
            p = max(p * ratio, p + 1)
        if len(positions) <= _MAX_CHECKPOINTS:
            return steps[sorted(positions)]
        ratio *= 1.1


def _nearest_lower(checkpoints: np.ndarray, step: int) -> int | None:
    i = int(np.searchsorted(checkpoints, step, side="right")) - 1
    return None if i < 0 else int(checkpoints[i])


def _is_first_in_interval_step(
    step: int, intermediate_steps: Any, n_warmup_steps: int, interval_steps: int
) -> bool:
    nearest_lower_pruning_step = (
        step - n_warmup_steps
    ) // interval_steps * interval_steps + n_warmup_steps
    second_last_step = max((s for s in intermediate_steps if s != step), default=-1)
    return second_last_step < nearest_lower_pruning_step


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, but got {name}={value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, but got {name}={value!r}.")


def _check_float(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name} must be a float, but got {name}={value!r}.")
    if not (low <= value <= high) or math.isnan(value):
        raise ValueError(f"{name} must be in [{low}, {high}], but got {name}={value!r}.")

"""Aggregation, markdown tables and plots of the benchmark's results, and the ``report`` command.

``report`` renders the tables again from ``results.jsonl`` files written by ``replay``,
``anytime`` and ``predict``, so that a results page can be regenerated without rerunning
anything; with ``--plots`` it draws the figures again too.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from collections.abc import Sequence
import json
import math
from pathlib import Path
import sys
from typing import Any
import warnings

import numpy as np

from optuna_srp.benchmark._corpus import Corpus
from optuna_srp.benchmark._corpus import load_corpus
from optuna_srp.benchmark._pruners import OPTUNA_PRUNERS
from optuna_srp.benchmark._pruners import PRUNER_NAMES


DESCRIPTION = (
    "Render markdown tables (and optionally plots) from the results.jsonl files that anytime, "
    "replay and predict write (or the folders holding them), e.g. to compare runs made at "
    "different times."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` options to ``parser``."""
    parser.add_argument(
        "results",
        nargs="+",
        type=Path,
        help="results.jsonl files of anytime, replay, predict, or the --out folders holding them",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write the markdown to this file instead of printing it (default: print it)",
    )
    parser.add_argument(
        "--compact",
        action="store_true",
        help="also a corpus x pruner table of speedup / hit rate / top-5 completed (default: off)",
    )
    parser.add_argument(
        "--plots",
        type=Path,
        default=None,
        help="draw replay and anytime plots in this folder (default: no plots)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``report``; returns the exit status."""
    replay_rows: list[dict[str, Any]] = []
    predict_rows: list[dict[str, Any]] = []
    anytime_rows: list[dict[str, Any]] = []
    for path in args.results:
        try:
            rows = read_jsonl(path)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for row in rows:
            kind = str(row.get("kind", ""))
            target = {"predict": predict_rows, "anytime": anytime_rows}.get(kind, replay_rows)
            target.append(row)
    parts = []
    if anytime_rows:
        parts.append(anytime_report(anytime_rows))
    if replay_rows:
        summary = aggregate_replay(replay_rows)
        seeds = sorted({int(r["ordering"]) for r in replay_rows if "ordering" in r})
        n_trials = max((int(r["n_trials"]) for r in replay_rows if "n_trials" in r), default=0)
        parts.append(
            f"#### Replay: {len(seeds)} ordering{'s' * (len(seeds) != 1)} (seeds "
            f"{_ranges(seeds)}), up to {n_trials} trials a study"
        )
        if args.compact:
            parts.append(compact_table(summary))
        parts.append(replay_table(summary))
    if predict_rows:
        parts.append("#### Predict: final values from partial curves")
        parts.append(predict_table(aggregate_predict(predict_rows)))
    text = "\n\n".join(parts) + "\n"
    if args.out is not None:
        args.out.write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    if args.plots is not None and replay_rows:
        for written in replay_plots(replay_rows, args.plots):
            print(f"wrote {written}", file=sys.stderr)
    if args.plots is not None and anytime_rows:
        for written in anytime_plots(anytime_rows, args.plots):
            print(f"wrote {written}", file=sys.stderr)
    return 0


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file, or the ``results.jsonl`` in the folder ``path``.

    Raises:
        OSError: If the file cannot be read (the message names it).
        ValueError: On a line that is not JSON text, naming the file and the line.
    """
    if path.is_dir():
        path = path / "results.jsonl"
    rows = []
    with open(path, encoding="utf-8") as f:
        lineno = 0
        try:
            for lineno, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        except UnicodeDecodeError:
            # A corpus (.jsonl.gz) or another binary file given by mistake.
            raise ValueError(
                f"{path}:{lineno + 1}: not UTF-8 text; report reads the results.jsonl files "
                "that anytime, replay and predict write with --out"
            ) from None
    return rows


# ----------------------------------------------------------------------------------- replay


def aggregate_replay(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate study results per (corpus, pruner) over orderings.

    Corpora are sorted by name, pruners as in :data:`PRUNER_NAMES` (variants after their base).

    ``speedup`` is the total steps without pruning over the total steps trained; the rates
    and ``regret`` are means over orderings; ``epochs_to_best`` is the mean over the orderings
    that found the best (``n_found`` of them); ``prune_ms`` is the mean call time over all calls;
    ``s_per_fit`` the mean time of the slow calls (the refit proxy).
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["corpus"], r["pruner"]), []).append(r)
    out = []
    for (corpus, pruner), rs in sorted(groups.items(), key=lambda kv: _group_order(*kv[0])):
        found = [r["epochs_to_best"] for r in rs if r.get("epochs_to_best") is not None]
        regrets = [r["regret"] for r in rs if _finite(r.get("regret"))]
        calls = sum(r["prune_calls"] for r in rs)
        fit_calls = sum(r.get("fit_calls", 0) for r in rs)
        out.append(
            {
                "corpus": corpus,
                "pruner": pruner,
                "orderings": len(rs),
                "n_trials": int(np.mean([r["n_trials"] for r in rs])),
                "speedup": sum(r["epochs_full"] for r in rs)
                / max(1, sum(r["epochs_spent"] for r in rs)),
                "hit_rate": float(np.mean([r["hit"] for r in rs])),
                "best_completed": float(np.mean([r["best_completed"] for r in rs])),
                "top5_completed": float(np.mean([r["top5_completed"] for r in rs])),
                "regret": float(np.mean(regrets)) if regrets else math.nan,
                "epochs_to_best": float(np.mean(found)) if found else math.nan,
                "n_found": len(found),
                "epochs_full": float(np.mean([r["epochs_full"] for r in rs])),
                "prune_ms": 1e3 * sum(r["prune_s"] for r in rs) / max(1, calls),
                "fit_calls": fit_calls / len(rs),
                "s_per_fit": sum(r.get("fit_s", 0.0) for r in rs) / fit_calls
                if fit_calls
                else math.nan,
                "wall_s": float(np.mean([r["wall_s"] for r in rs])),
            }
        )
    return out


def replay_header(orderings: int, n_trials: int | None, first_ordering: int = 0) -> str:
    """A line describing a replay's settings."""
    cap = "all configurations" if n_trials is None else f"the first {n_trials} configurations"
    seeds = f"seeds {first_ordering}..{first_ordering + orderings - 1}"
    return f"Replay: {orderings} orderings per corpus ({seeds}), {cap} of each.\n"


def replay_table(summary: Sequence[dict[str, Any]]) -> str:
    """The replay summary as a markdown table."""
    head = (
        "| corpus | pruner | speedup | hit rate | best completed | top-5 completed | regret "
        "| epochs to best (found) | ms/call | refit proxy: calls, s/call | s/study |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for s in summary:
        etb = (
            f"{s['epochs_to_best']:.0f} / {s['epochs_full']:.0f} ({s['n_found']}/{s['orderings']})"
            if s["n_found"]
            else f"- ({s['n_found']}/{s['orderings']})"
        )
        if not s["pruner"].startswith("srp"):
            fits = "-"  # no model to fit; slow calls there are garbage collection and the like
        elif s["fit_calls"]:
            fits = f"{s['fit_calls']:.0f}, {s['s_per_fit']:.3f}"
        else:
            fits = "0"
        lines.append(
            f"| {s['corpus']} | {s['pruner']} | {s['speedup']:.2f}x | {s['hit_rate']:.2f} "
            f"| {s['best_completed']:.2f} | {s['top5_completed']:.2f} | {_fmt(s['regret'], 3)} "
            f"| {etb} | {s['prune_ms']:.2f} | {fits} | {s['wall_s']:.1f} |"
        )
    return "\n".join(lines)


def compact_table(summary: Sequence[dict[str, Any]]) -> str:
    """One row per corpus, one column per pruner: ``speedup / hit rate / top-5 completed``."""
    pruners = list(dict.fromkeys(s["pruner"] for s in summary))
    keyed = {(s["corpus"], s["pruner"]): s for s in summary}
    lines = [
        "Each cell: speedup / hit rate / top-5 completed.\n",
        "| corpus | " + " | ".join(pruners) + " |",
        "|---|" + "---|" * len(pruners),
    ]
    for corpus in dict.fromkeys(s["corpus"] for s in summary):
        cells = []
        for p in pruners:
            s = keyed.get((corpus, p))
            cells.append(
                "-"
                if s is None
                else f"{s['speedup']:.1f}x / {s['hit_rate']:.1f} / {s['top5_completed']:.2f}"
            )
        lines.append(f"| {corpus} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replay_plots(
    rows: Sequence[dict[str, Any]], out: Path, corpora: Sequence[Corpus] | None = None
) -> list[Path]:
    """Draw, per corpus, speedup against regret and the curves coloured by decision.

    Returns the files written; nothing when matplotlib is not installed.
    """
    plt = _pyplot()
    if plt is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    by_name = {c.name: c for c in corpora or []}
    written = []
    summary = aggregate_replay(rows)
    for corpus_name in dict.fromkeys(r["corpus"] for r in rows):
        slug = _slug(corpus_name)
        # Speedup against regret: one point per ordering, a cross per pruner's mean.
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        pruners = list(dict.fromkeys(r["pruner"] for r in rows if r["corpus"] == corpus_name))
        cmap = plt.get_cmap("tab10")
        for i, pruner in enumerate(pruners):
            rs = [r for r in rows if r["corpus"] == corpus_name and r["pruner"] == pruner]
            xs = [r["speedup"] for r in rs]
            ys = [r["regret"] if _finite(r["regret"]) else np.nan for r in rs]
            ax.scatter(xs, ys, color=cmap(i % 10), alpha=0.4, s=18)
            s = next(x for x in summary if x["corpus"] == corpus_name and x["pruner"] == pruner)
            ax.scatter(
                [s["speedup"]],
                [s["regret"]],
                color=cmap(i % 10),
                marker="X",
                s=90,
                label=pruner,
                edgecolor="k",
                linewidth=0.5,
            )
        ax.set_xscale("log")
        ax.set_xlabel("speedup (steps without pruning / steps trained)")
        ax.set_ylabel("normalised regret (0 = found the best)")
        ax.set_title(corpus_name, fontsize=9)
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"speedup_regret_{slug}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

        corpus = by_name.get(corpus_name)
        if corpus is None:
            corpus_path = next(
                (r.get("corpus_path") for r in rows if r["corpus"] == corpus_name), None
            )
            if corpus_path is None or not Path(corpus_path).exists():
                continue
            corpus = load_corpus(corpus_path)
        written.append(_curves_plot(plt, corpus, rows, out / f"curves_{slug}.png"))
    return written


def _curves_plot(plt: Any, corpus: Corpus, rows: Sequence[dict[str, Any]], path: Path) -> Path:
    first = {}
    for r in rows:
        if r["corpus"] == corpus.name and r["pruner"] not in first:
            first[r["pruner"]] = r
    n = len(first)
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.4 * ncols, 2.8 * nrows), squeeze=False, sharex=True, sharey=True
    )
    by_id = {c.id: c for c in corpus.configs}
    steps = np.array(corpus.step_values)
    finals = corpus.finals()
    finite = finals[np.isfinite(finals)]
    curves = np.concatenate([c.curve for c in corpus.configs])
    curves = curves[np.isfinite(curves)]
    # Focus on the range where decisions are made; diverged runs go off the chart.
    lo, hi = np.percentile(curves, [1, 100]) if corpus.sign > 0 else np.percentile(curves, [0, 99])
    if finite.size:
        lo, hi = min(lo, finite.min()), max(hi, finite.max()) if corpus.sign > 0 else hi
    for ax, (pruner, r) in zip(axes.ravel(), first.items()):
        for cid, n_run, state in r["trials"]:
            curve = by_id[cid].curve
            color, alpha, z = {"C": ("tab:blue", 0.5, 1), "P": ("tab:red", 0.35, 2)}.get(
                state, ("k", 0.3, 1)
            )
            ax.plot(
                steps[:n_run], curve[:n_run], color=color, alpha=alpha, linewidth=0.6, zorder=z
            )
            if state == "P":  # mark where the trial was stopped
                ax.plot(steps[n_run - 1], curve[n_run - 1], ".", color=color, ms=2.5, zorder=3)
        n_c = sum(t[2] == "C" for t in r["trials"])
        ax.set_title(f"{pruner}: {n_c} completed, {r['speedup']:.1f}x", fontsize=8)
        ax.set_ylim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.suptitle(
        f"{corpus.name}, ordering {next(iter(first.values()))['ordering']}: "
        "blue completed, red pruned",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------- predict


def aggregate_predict(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean of each predict metric over seeds, per (corpus, n_train, fraction, method)."""
    groups: dict[tuple[str, int, float, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["corpus"], r["n_train"], r["fraction"], r["method"]), []).append(r)
    out = []
    for (corpus, n_train, fraction, method), rs in groups.items():
        agg: dict[str, Any] = {
            "corpus": corpus,
            "n_train": n_train,
            "fraction": fraction,
            "method": method,
            "seeds": len(rs),
        }
        for key in ("r2", "spearman", "kendall", "cover80", "cover90", "cover90_t", "fit_s"):
            vals = [r[key] for r in rs if _finite(r.get(key))]
            agg[key] = float(np.mean(vals)) if vals else math.nan
        out.append(agg)
    return out


def predict_table(summary: Sequence[dict[str, Any]]) -> str:
    """The predict summary as a markdown table: one row per (corpus, n_train, fraction),
    one R² / Spearman / Kendall column group per method, and the SRM's interval coverage
    (Gaussian 80% and 90%, Student t 90%)."""
    methods = list(dict.fromkeys(s["method"] for s in summary))
    keyed = {(s["corpus"], s["n_train"], s["fraction"], s["method"]): s for s in summary}
    head = (
        "| corpus | n_train | curve seen | "
        + " | ".join(f"{m} R² / ρ / τ" for m in methods)
        + " | srm cover 80% / 90% / 90% t | srm fit s |"
    )
    lines = [head, "|---|---|---|" + "---|" * len(methods) + "---|---|"]
    for corpus, n_train, fraction in dict.fromkeys(
        (s["corpus"], s["n_train"], s["fraction"]) for s in summary
    ):
        cells = []
        for m in methods:
            s = keyed.get((corpus, n_train, fraction, m))
            cells.append(
                "-"
                if s is None
                else f"{_fmt(s['r2'], 2)} / {_fmt(s['spearman'], 2)} / {_fmt(s['kendall'], 2)}"
            )
        srm = keyed.get((corpus, n_train, fraction, "srm"))
        cover = (
            " / ".join(_fmt(srm[key], 2) for key in ("cover80", "cover90", "cover90_t"))
            if srm
            else "-"
        )
        fit = _fmt(srm["fit_s"], 3) if srm else "-"
        lines.append(
            f"| {corpus} | {n_train} | {fraction:.0%} | "
            + " | ".join(cells)
            + f" | {cover} | {fit} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- anytime

_SAMPLER_ORDER = ("random", "tpe")


def aggregate_anytime(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate ``anytime`` results per (sampler, corpus, pruner, budget) over orderings.

    ``regret_mean``/``regret_median`` are over the orderings with a complete trial within the
    budget (``answered`` of ``orderings``); ``hit_rate`` counts the others as misses;
    ``started`` is the mean number of configurations started; ``incumbent_regret`` the mean
    regret of the best value reported at any step (the secondary incumbent).
    """
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((_setting(r), r["corpus"], r["pruner"]), []).append(r)
    out = []
    for (sampler, corpus, pruner), rs in sorted(
        groups.items(), key=lambda kv: _anytime_key(*kv[0])
    ):
        for i, budget in enumerate(rs[0]["budgets"]):
            at = [r["at_budget"][i] for r in rs]
            regrets = [a["regret"] for a in at if _finite(a["regret"])]
            incumbents = [a["incumbent_regret"] for a in at if _finite(a["incumbent_regret"])]
            out.append(
                {
                    "sampler": sampler,
                    "corpus": corpus,
                    "pruner": pruner,
                    "budget": budget,
                    "orderings": len(rs),
                    "answered": len(regrets),
                    "regret_mean": float(np.mean(regrets)) if regrets else math.nan,
                    "regret_median": float(np.median(regrets)) if regrets else math.nan,
                    "hit_rate": float(np.mean([a["hit"] for a in at])),
                    "started": float(np.mean([a["started"] for a in at])),
                    "incumbent_regret": float(np.mean(incumbents)) if incumbents else math.nan,
                    "exhausted": sum(
                        r["exhausted"] and r["epochs_spent"] < budget * r["n_steps"] for r in rs
                    ),
                }
            )
    return out


def regret_trajectory(row: dict[str, Any], grid: np.ndarray) -> np.ndarray:
    """The regret of the best complete trial finished within each number of steps of ``grid``.

    NaN where no trial has completed yet; after the last trial, the study's final answer.
    """
    run = np.array([t[1] for t in row["trials"]], dtype=np.int64)
    finals = np.array(
        [t[3] if t[2] == "C" and t[3] is not None else -np.inf for t in row["trials"]],
        dtype=np.float64,
    )
    if not run.size:
        return np.full(len(grid), math.nan)
    if row.get("workers", 1) == 1:
        ended = np.cumsum(run)  # one after the other, in trial order
    else:
        # Trials that ran at once each record the steps spent (every worker's) when they ended.
        ended = np.array([t[4] for t in row["trials"]], dtype=np.int64)
        in_order = np.argsort(ended, kind="stable")
        ended, finals = ended[in_order], finals[in_order]
    best = np.maximum.accumulate(finals)
    regret = np.where(np.isfinite(best), (row["true_best"] - best) / row["scale"], math.nan)
    done = np.searchsorted(ended, grid, side="right") - 1
    return np.where(done >= 0, regret[np.maximum(done, 0)], math.nan)


def mean_trajectories(
    rows: Sequence[dict[str, Any]],
) -> dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]:
    """Per (sampler, corpus, pruner): the grid of steps 1..max budget x T and the regret of
    every ordering on it (orderings x grid)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((_setting(r), r["corpus"], r["pruner"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        end = max(int(math.ceil(max(r["budgets"]) * r["n_steps"])) for r in rs)
        grid = np.arange(1, end + 1)
        out[key] = (grid, np.array([regret_trajectory(r, grid) for r in rs]))
    return out


def speedup_to_reference(
    rows: Sequence[dict[str, Any]], reference: float = 20.0
) -> dict[tuple[str, str], dict[str, Any]]:
    """LC-PFN's headline figure, per (sampler, corpus).

    The reference is the mean regret over orderings that no pruning (``nop``) has after
    ``reference`` full trainings; each pruner's factor is ``reference x T`` divided by the
    first number of steps at which its mean regret (over orderings, defined once every
    ordering has a complete trial) is no higher. A factor below 1 means it needs more steps;
    ``None`` means it never gets there within its largest budget, whose factor is then an
    upper bound (``bound``).

    Returns:
        ``{(sampler, corpus): {"regret": reference regret, "factors": {pruner: factor or
        None}, "bound": {pruner: reference steps / steps replayed}}}``; a corpus without a
        ``nop`` run or whose budgets stop before the reference is left out.
    """
    curves = mean_trajectories(rows)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for (sampler, corpus, pruner), (grid, regrets) in curves.items():
        if pruner != "nop":
            continue
        n_steps = next(r["n_steps"] for r in rows if r["corpus"] == corpus)
        ref_steps = int(round(reference * n_steps))
        if ref_steps > grid[-1]:
            continue
        ref = float(np.mean(regrets[:, ref_steps - 1]))
        if not math.isfinite(ref):
            continue
        factors: dict[str, float | None] = {}
        bound: dict[str, float] = {}
        for (s2, c2, p2), (g2, r2) in curves.items():
            if (s2, c2) != (sampler, corpus) or p2 == "nop":
                continue
            mean = np.mean(r2, axis=0)  # NaN until every ordering has an answer
            reached = np.flatnonzero(mean <= ref + 1e-12)
            factors[p2] = ref_steps / float(g2[reached[0]]) if reached.size else None
            bound[p2] = ref_steps / float(g2[-1])
        out[(sampler, corpus)] = {"regret": ref, "factors": factors, "bound": bound}
    return out


def anytime_report(rows: Sequence[dict[str, Any]], reference: float = 20.0) -> str:
    """The markdown of ``anytime`` results: per sampler, the corpus x budget table of mean
    regret (lowest in bold), LC-PFN's figure, and the detailed table."""
    summary = aggregate_anytime(rows)
    factors = speedup_to_reference(rows, reference)
    parts = []
    for sampler in sorted({s["sampler"] for s in summary}, key=_sampler_rank):
        ss = [s for s in summary if s["sampler"] == sampler]
        seeds = sorted({r["ordering"] for r in rows if _setting(r) == sampler})
        parts.append(
            f"#### Sampler `{sampler}`: mean normalized regret of the best complete trial "
            f"(lowest in bold), {len(seeds)} ordering{'s' * (len(seeds) != 1)} "
            f"(seed{'s' * (len(seeds) != 1)} {_ranges(seeds)})\n\n" + anytime_table(ss)
        )
        fs = {c: f for (smp, c), f in factors.items() if smp == sampler}
        if fs:
            parts.append(
                f"#### Sampler `{sampler}`: how many times fewer steps than no pruning to "
                f"reach the regret no pruning has after {reference:g} full trainings "
                "(LC-PFN's figure)\n\n" + reference_table(fs)
            )
        anchor = anchor_tables(ss)
        if anchor:
            parts.append(
                f"#### Sampler `{sampler}`: against the lowest of Optuna's pruners in each "
                "cell\n\n" + anchor
            )
    parts.append(
        "#### Every cell: mean / median regret, hit rate, configurations started, and the "
        "secondary incumbent's mean regret (best value reported at any step)\n\n"
        + anytime_detail_table(summary)
    )
    return "\n\n".join(parts)


def anytime_table(summary: Sequence[dict[str, Any]]) -> str:
    """Rows (corpus, budget), a column per pruner: mean regret, the lowest in bold.

    A ``*`` marks a mean over fewer orderings than were run (the others had no complete trial
    within the budget); ``†`` a budget beyond the steps the corpus holds for some orderings.
    """
    pruners = list(dict.fromkeys(s["pruner"] for s in summary))
    keyed = {(s["corpus"], s["budget"], s["pruner"]): s for s in summary}
    lines = [
        "| corpus | B | " + " | ".join(pruners) + " |",
        "|---|---|" + "---|" * len(pruners),
    ]
    for corpus, budget in dict.fromkeys((s["corpus"], s["budget"]) for s in summary):
        cells = [keyed.get((corpus, budget, p)) for p in pruners]
        shown = [_fmt(c["regret_mean"], 2) if c else "-" for c in cells]
        finite = [float(v) for v in shown if v != "-"]
        low = min(finite) if finite else None
        out = []
        for c, v in zip(cells, shown):
            mark = ""
            if c is not None and c["answered"] < c["orderings"]:
                mark += "*"
            if c is not None and c["exhausted"]:
                mark += "†"
            out.append(
                (f"**{v}**" if low is not None and v != "-" and float(v) == low else v) + mark
            )
        lines.append(f"| {short_name(corpus)} | {budget:g} | " + " | ".join(out) + " |")
    marks = []
    if any(s["answered"] < s["orderings"] for s in summary):
        marks.append("`*` a mean over the orderings that had a complete trial within the budget")
    if any(s["exhausted"] for s in summary):
        marks.append(
            "`†` in some orderings the corpus ran out of configurations before the budget was "
            "spent"
        )
    if marks:
        lines.append("\n" + "; ".join(marks) + ".")
    return "\n".join(lines)


def anchor_tables(summary: Sequence[dict[str, Any]]) -> str:
    """How far each pruner is from the anchor, the lowest mean regret of Optuna's pruners at
    their defaults (:data:`OPTUNA_PRUNERS`) in each (corpus, budget) cell of one sampler:
    per pruner, the cells within the anchor + 0, + .01 and + .02 (unrounded means) and the
    excess summed over the cells; then, per cell, the anchor and each other pruner's excess.
    Empty without an Optuna pruner; a cell where no Optuna pruner has a mean is left out, one
    where the pruner has none counts as not within and adds nothing to its excess.
    """
    cells: dict[tuple[str, float], dict[str, float]] = {}
    for s in summary:
        cells.setdefault((s["corpus"], s["budget"]), {})[s["pruner"]] = s["regret_mean"]
    anchors = {}
    for key, means in cells.items():
        optuna_means = {p: m for p, m in means.items() if p in OPTUNA_PRUNERS and _finite(m)}
        if optuna_means:
            anchors[key] = min(optuna_means.items(), key=lambda pm: (pm[1], pm[0]))
    if not anchors:
        return ""
    pruners = sorted(
        {p for means in cells.values() for p in means}, key=lambda p: _group_order("", p)
    )
    margins = (0.0, 0.01, 0.02)
    lines = [
        "| pruner | cells within the lowest + 0 / + .01 / + .02 | summed excess | largest |",
        "|---|---|---|---|",
    ]
    for p in pruners:
        excess = {
            key: cells[key][p] - low
            for key, (_, low) in anchors.items()
            if _finite(cells[key].get(p))
        }
        within = " / ".join(str(sum(e <= m + 1e-9 for e in excess.values())) for m in margins)
        largest = "-"
        if excess:
            worst = max(excess, key=lambda k: excess[k])
            largest = f"{excess[worst]:.2f} ({short_name(worst[0])}, {worst[1]:g})"
        summed = sum(e for e in excess.values() if e > 0.0)
        lines.append(f"| {p} | {within} of {len(anchors)} | {summed:.2f} | {largest} |")
    contenders = [p for p in pruners if p not in OPTUNA_PRUNERS]
    if contenders:
        lines += [
            "",
            "| corpus | B | lowest of Optuna's | "
            + " | ".join(f"{p} - lowest" for p in contenders)
            + " |",
            "|---|---|---|" + "---|" * len(contenders),
        ]
        for (corpus, budget), (name, low) in anchors.items():
            diffs = [cells[(corpus, budget)].get(p, math.nan) - low for p in contenders]
            lines.append(
                f"| {short_name(corpus)} | {budget:g} | {low:.3f} ({name}) | "
                + " | ".join(f"{d:+.3f}" if _finite(d) else "-" for d in diffs)
                + " |"
            )
    return "\n".join(lines)


def reference_table(factors: dict[str, dict[str, Any]]) -> str:
    """Rows corpus, a column per pruner: LC-PFN's factor (see :func:`speedup_to_reference`)."""
    pruners = list(dict.fromkeys(p for f in factors.values() for p in f["factors"]))
    pruners.sort(key=lambda p: _group_order("", p))
    lines = [
        "| corpus | nop regret | " + " | ".join(pruners) + " |",
        "|---|---|" + "---|" * len(pruners),
    ]
    for corpus in sorted(factors):
        f = factors[corpus]
        cells = []
        for p in pruners:
            if p not in f["factors"]:
                cells.append("-")
            elif f["factors"][p] is None:
                cells.append(f"<{f['bound'][p]:.2f}x")
            else:
                cells.append(f"{f['factors'][p]:.2f}x")
        lines.append(f"| {short_name(corpus)} | {f['regret']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def anytime_detail_table(summary: Sequence[dict[str, Any]]) -> str:
    """One row per (sampler, corpus, pruner, budget) with every aggregated metric."""
    lines = [
        "| sampler | corpus | pruner | B | regret mean / median | hit rate | started "
        "| incumbent regret (secondary) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        answered = (
            "" if s["answered"] == s["orderings"] else f" ({s['answered']}/{s['orderings']})"
        )
        lines.append(
            f"| {s['sampler']} | {short_name(s['corpus'])} | {s['pruner']} | {s['budget']:g} "
            f"| {_fmt(s['regret_mean'], 3)} / {_fmt(s['regret_median'], 3)}{answered} "
            f"| {s['hit_rate']:.2f} | {s['started']:.0f} | {_fmt(s['incumbent_regret'], 3)} |"
        )
    return "\n".join(lines)


def anytime_plots(rows: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """Per corpus, normalized regret against full trainings spent (log x), a panel per sampler:
    the mean over orderings per pruner, shaded between the 25th and 75th percentiles.

    Returns the files written (``anytime_<corpus>.png``); nothing without matplotlib.
    """
    plt = _pyplot()
    if plt is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    curves = mean_trajectories(rows)
    # One colour per pruner on every panel and figure; no pruning grey and dashed, SRP thick.
    pruners = sorted({r["pruner"] for r in rows}, key=lambda p: _group_order("", p))
    styles: dict[str, tuple[Any, str, float]] = {"nop": ("grey", "--", 2.0)}
    for i, p in enumerate(q for q in pruners if q != "nop"):
        styles[p] = (plt.get_cmap("tab10")(i % 10), "-", 2.0 if p.startswith("srp") else 1.0)
    written = []
    for corpus in sorted({r["corpus"] for r in rows}):
        samplers = sorted({k[0] for k in curves if k[1] == corpus}, key=_sampler_rank)
        fig, axes = plt.subplots(
            1, len(samplers), figsize=(5.2 * len(samplers), 3.8), squeeze=False, sharey=True
        )
        n_steps = next(r["n_steps"] for r in rows if r["corpus"] == corpus)
        budgets = next(r["budgets"] for r in rows if r["corpus"] == corpus)
        top = 0.0
        for ax, sampler in zip(axes[0], samplers):
            keys = sorted(
                (k for k in curves if k[:2] == (sampler, corpus)),
                key=lambda k: _group_order("", k[2]),
            )
            for key in keys:
                grid, regrets = curves[key]
                x = grid / n_steps
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
                    mean = np.mean(regrets, axis=0)
                    lo, hi = np.nanpercentile(regrets, [25, 75], axis=0)
                lo[np.isnan(mean)] = hi[np.isnan(mean)] = np.nan
                color, style, width = styles[key[2]]
                ax.plot(x, mean, style, color=color, linewidth=width, label=key[2])
                ax.fill_between(x, lo, hi, color=color, alpha=0.12, linewidth=0)
                late = mean[x >= 1.0]
                if np.isfinite(late).any():
                    top = max(top, float(np.nanmax(late)))
            for b in budgets:
                ax.axvline(b, color="grey", linewidth=0.5, linestyle=":")
            ax.set_xscale("log")
            ax.set_xlim(1.0, max(budgets))
            ax.set_xlabel("full trainings spent (steps / T)")
            ax.set_title(f"{short_name(corpus)}, sampler {sampler}", fontsize=9)
        axes[0][0].set_ylabel("normalized regret (mean, IQR)")
        axes[0][0].set_ylim(-0.02, min(max(top, 0.1), 1.5) * 1.05)
        axes[0][0].legend(fontsize=7, ncol=2)  # the random panel: every pruner
        fig.tight_layout()
        path = out / f"anytime_{_slug(corpus)}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


_DISPLAY_PREFIXES = (
    ("accelerating_nas-", ""),
    ("taskset-FixedTextRNNClassification_imdb_", "taskset "),
)
_DISPLAY_SUFFIXES = (("-blood-transfusion-service-center", " (blood transfusion)"),)


def short_name(corpus: str) -> str:
    """A corpus's name as the tables of docs/benchmarks.md show it (shared prefixes cut)."""
    for long, short in _DISPLAY_PREFIXES:
        if corpus.startswith(long):
            corpus = short + corpus[len(long) :]
    for long, short in _DISPLAY_SUFFIXES:
        if corpus.endswith(long):
            corpus = corpus[: -len(long)] + short
    return corpus


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or None (saying so) when not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots", file=sys.stderr)
        return None
    return plt


def _anytime_key(sampler: str, corpus: str, pruner: str) -> tuple[tuple[int, int], str, int, str]:
    return (_sampler_rank(sampler),) + _group_order(corpus, pruner)


def _setting(row: dict[str, Any]) -> str:
    """The sampler of an ``anytime`` row, with its workers where trials ran at once: rows of
    different settings are never compared in one table."""
    workers = row.get("workers", 1)
    return row["sampler"] if workers == 1 else f"{row['sampler']}, {workers} workers"


def _sampler_rank(setting: str) -> tuple[int, int]:
    sampler, _, workers = setting.partition(", ")
    rank = _SAMPLER_ORDER.index(sampler) if sampler in _SAMPLER_ORDER else len(_SAMPLER_ORDER)
    return rank, int(workers.split()[0]) if workers else 1


def _ranges(values: Sequence[int]) -> str:
    """``0-9`` for consecutive integers, else the list."""
    if values and list(values) == list(range(values[0], values[0] + len(values))):
        return f"{values[0]}-{values[-1]}" if len(values) > 1 else str(values[0])
    return ", ".join(map(str, values))


def _group_order(corpus: str, pruner: str) -> tuple[str, int, str]:
    base = pruner.split(":")[0]
    rank = PRUNER_NAMES.index(base) if base in PRUNER_NAMES else len(PRUNER_NAMES)
    return corpus, rank, pruner


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any, digits: int) -> str:
    return f"{v:.{digits}f}" if _finite(v) else "-"


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)

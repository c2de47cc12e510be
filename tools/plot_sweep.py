#!/usr/bin/python3
"""Figures of a sweep (configs/sweeps/*.ini), read from its run files, also while runs are going.

usage: tools/plot_sweep.py --sweep FILE [--out DIR] [--results DIR] [--bbt BIN] [--title TEXT]

Writes, as PNG and PDF:
  DIR/convergence.{png,pdf}     train loss (best so far) and dev metric against API calls: one line per
                                method (and axis value), mean with a ±std band over split seeds, one
                                column of panels per task (methods without steps have no curve)
  DIR/ablation_<key>.{png,pdf}  for each axis of the sweep: the test metric against the axis value,
                                mean ± std over split seeds, one line per method, one panel per task
The runs are the sweep's (`bbt sweep plan FILE --json`: names, labels, axis values); a run file is
found under --results DIR (default: $BBT_RESULTS, else the run's output.dir; a sweep file's own
output.dir wins), opened with SWMR (h5py swmr=True) so a running job's file is read as far as it is
flushed; missing runs are left out of the means and counted in the legend ("2/3 runs").
Needs Debian's python3-h5py and python3-matplotlib (headless: the Agg backend).
"""
import argparse
import json
import math
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes
import h5py  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# The run file's names, as `bbt report --schema` prints them (tests/cli/sweep_report.sh checks them).
SCHEMA = {
    "train_api_calls": "/train/api_calls",
    "train_best_loss": "/train/best_loss",
    "dev_api_calls": "/dev/api_calls",
    "dev_metric": "/dev/metric",
    "test_metric": "/test/metric",
    "run_finished": "/run/finished",
}
S = SCHEMA
# The gradient methods' own per-step series (methods::PromptTuning: prompt_tuning, ptuning_v2,
# bbt_adam), method-owned and so not in the schema. Their runs have no /train/api_calls: step i is
# their (i+1)-th train query (with a full batch, bbt_adam's API call; prompt tuning also counts dev).
TUNING_LOSS, TUNING_DEV = "/train/tuning_loss", "/train/tuning_dev_metric"


def die(msg):
    print(f"plot_sweep.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def open_run(path):
    """SWMR read when the file allows it (a running job's file), else a plain open; None if absent."""
    if not os.path.exists(path):
        return None
    try:
        return h5py.File(path, "r", swmr=True)
    except OSError:
        try:
            return h5py.File(path, "r")
        except OSError as e:
            print(f"plot_sweep.py: warning: cannot open '{path}': {e}; left out", file=sys.stderr)
            return None


def read(f, name):
    if name not in f:
        return np.zeros(0)
    d = f[name]
    if hasattr(d, "refresh"):
        try:
            d.refresh()  # SWMR: see what the writer flushed since the file was opened
        except Exception:  # noqa: BLE001 - a plain (non-SWMR) open has nothing to refresh
            pass
    return np.asarray(d[()], dtype=float).reshape(-1)


def load_plan(args):
    try:
        out = subprocess.run([args.bbt, "sweep", "plan", args.sweep, "--json"], check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        die(f"bbt binary '{args.bbt}' not found (--bbt BIN)")
    except subprocess.CalledProcessError as e:
        die(e.stderr.strip().splitlines()[-1] if e.stderr.strip() else f"bbt sweep plan failed ({e.returncode})")
    return json.loads(out.stdout)


def run_path(run, results):
    d = run["output_dir"] if run["output_dir_set"] or not results else results
    return os.path.join(d, run["name"], "run.h5")


def band(ax, curves, label, color):
    """Mean and ±std of curves (x, y) on a common grid of API calls."""
    curves = [(x, y) for x, y in curves if len(x) > 0]
    if not curves:
        return False
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    ys = np.full((len(curves), len(grid)), np.nan)
    for i, (x, y) in enumerate(curves):
        inside = grid <= x[-1]
        ys[i, inside] = np.interp(grid[inside], x, y)
    with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(ys, axis=0)
        std = np.nanstd(ys, axis=0, ddof=1) if len(curves) > 1 else np.zeros_like(mean)
    std = np.nan_to_num(std)
    ax.plot(grid, mean, label=label, color=color, lw=1.5)
    ax.fill_between(grid, mean - std, mean + std, color=color, alpha=0.2, lw=0)
    return True


def group_label(run, axes):
    parts = [run["method"]] + [f"{k}={run['axes'][k]}" for k in axes]
    return ", ".join(parts)


def save(fig, out, stem):
    paths = []
    for ext in ("png", "pdf"):
        p = os.path.join(out, f"{stem}.{ext}")
        fig.savefig(p, dpi=120)
        paths.append(p)
    plt.close(fig)
    print("wrote " + " and ".join(paths))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sweep", required=True, help="the sweep file")
    ap.add_argument("--out", default="figures", help="directory for the figures (default figures/)")
    ap.add_argument("--results", default=os.environ.get("BBT_RESULTS", ""), help="directory of the runs")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--bbt", default=os.environ.get("BBT_BIN", os.path.join(here, "..", "build", "bbt")),
                    help="the bbt binary (default $BBT_BIN, else build/bbt)")
    ap.add_argument("--title", default="", help="a title above the figures")
    args = ap.parse_args()

    plan = load_plan(args)
    if not plan:
        die(f"{args.sweep} has no runs")
    os.makedirs(args.out, exist_ok=True)
    tasks, groups, axes = [], [], list(plan[0]["axes"].keys())
    data = {}  # run name -> dict of arrays, or None when there is no file
    for run in plan:
        if run["task"] not in tasks:
            tasks.append(run["task"])
        g = group_label(run, axes)
        if g not in groups:
            groups.append(g)
        f = open_run(run_path(run, args.results))
        if f is None:
            data[run["name"]] = None
            continue
        with f:
            finished = read(f, S["run_finished"])
            data[run["name"]] = {
                "calls": read(f, S["train_api_calls"]),
                "loss": read(f, S["train_best_loss"]),
                "dev_calls": read(f, S["dev_api_calls"]),
                "dev": read(f, S["dev_metric"]),
                "test": read(f, S["test_metric"]),
                "finished": len(finished) > 0 and finished[0] == 1,
            }
            d = data[run["name"]]
            if len(d["calls"]) == 0 and TUNING_LOSS in f:
                d["loss"] = read(f, TUNING_LOSS)
                d["calls"] = np.arange(1, len(d["loss"]) + 1, dtype=float)
                dev = read(f, TUNING_DEV)
                at = np.flatnonzero(np.isfinite(dev))
                d["dev_calls"], d["dev"] = (at + 1).astype(float), dev[at]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color = {g: colors[i % len(colors)] for i, g in enumerate(groups)}
    suffix = f" — {args.title}" if args.title else ""

    # Convergence: rows = train loss, dev metric; columns = tasks.
    fig, axs = plt.subplots(2, len(tasks), figsize=(max(6.0, 4.2 * len(tasks)), 6.4), squeeze=False)
    drawn = False
    for j, task in enumerate(tasks):
        for g in groups:
            runs = [r for r in plan if r["task"] == task and group_label(r, axes) == g]
            have = [data[r["name"]] for r in runs if data[r["name"]] is not None]
            n = f" ({len(have)}/{len(runs)} runs)" if len(have) < len(runs) else ""
            loss = []
            for d in have:
                k = min(len(d["calls"]), len(d["loss"]))
                loss.append((d["calls"][:k], np.minimum.accumulate(d["loss"][:k]) if k else d["loss"][:k]))
            dev = []
            for d in have:
                k = min(len(d["dev_calls"]), len(d["dev"]))
                dev.append((d["dev_calls"][:k], 100 * d["dev"][:k]))
            drawn |= band(axs[0][j], loss, g + n, color[g])
            band(axs[1][j], dev, g + n, color[g])
        axs[0][j].set_title(task)
        axs[0][j].set_ylabel("train loss (best so far)")
        axs[1][j].set_ylabel("dev metric x100")
        axs[1][j].set_xlabel("API calls")
        for ax in (axs[0][j], axs[1][j]):
            ax.grid(alpha=0.3)
    handles, labels = axs[0][0].get_legend_handles_labels()
    for j in range(1, len(tasks)):
        h, lab = axs[0][j].get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    if not drawn:
        fig.text(0.5, 0.5, "no training series yet", ha="center")
    fig.suptitle(f"Convergence (mean ± std over split seeds){suffix}")
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    save(fig, args.out, "convergence")

    # One figure per axis: test metric against the axis value.
    methods = []
    for r in plan:
        if r["method"] not in methods:
            methods.append(r["method"])
    for key in axes:
        values = []
        for r in plan:
            if r["axes"][key] not in values:
                values.append(r["axes"][key])
        fig, axs = plt.subplots(1, len(tasks), figsize=(max(6.0, 4.2 * len(tasks)), 3.8), squeeze=False)
        for j, task in enumerate(tasks):
            ax = axs[0][j]
            for i, m in enumerate(methods):
                means, stds = [], []
                for v in values:
                    t = [100 * data[r["name"]]["test"][0] for r in plan
                         if r["task"] == task and r["method"] == m and r["axes"][key] == v
                         and data[r["name"]] is not None and data[r["name"]]["finished"]
                         and len(data[r["name"]]["test"]) and math.isfinite(data[r["name"]]["test"][0])]
                    means.append(np.mean(t) if t else np.nan)
                    stds.append(np.std(t, ddof=1) if len(t) > 1 else 0.0)
                x = np.arange(len(values))
                ax.errorbar(x, means, yerr=stds, marker="o", capsize=3, label=m, color=colors[i % len(colors)])
            ax.set_xticks(np.arange(len(values)))
            ax.set_xticklabels(values)
            ax.set_xlabel(key)
            ax.set_ylabel("test metric x100")
            ax.set_title(task)
            ax.grid(alpha=0.3)
        axs[0][0].legend(fontsize=8)
        fig.suptitle(f"Ablation: {key}\nmean ± std over split seeds{suffix}", fontsize=10)
        fig.tight_layout()
        save(fig, args.out, "ablation_" + key.replace(".", "_"))


if __name__ == "__main__":
    main()

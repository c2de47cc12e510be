#!/usr/bin/python3
"""Plot a bbt run file: train loss (generation best and mean) and dev metric against API calls.

usage: tools/plot_run.py RUN.h5 [-o curves.png] [--title TEXT]

Opens the file with SWMR (h5py swmr=True) so it also works while `bbt train` is writing it.
Needs Debian's python3-h5py and python3-matplotlib (headless: the Agg backend).
"""
import argparse
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes
import h5py  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


# The run file's names, as `bbt report --schema` prints them (the schema's one owner is bbt's
# app/run_record; tests/cli/plot_run.sh checks every name here against that output).
SCHEMA = {
    "attr_task": "task",
    "attr_metric": "metric",
    "attr_split_seed": "split_seed",
    "attr_seed": "seed",
    "train_api_calls": "/train/api_calls",
    "train_best_loss": "/train/best_loss",
    "train_mean_loss": "/train/mean_loss",
    "dev_api_calls": "/dev/api_calls",
    "dev_metric": "/dev/metric",
    "test_metric": "/test/metric",
    "test_initial_metric": "/test/initial_metric",
    "run_finished": "/run/finished",
}
S = SCHEMA


def die(msg):
    print(f"plot_run.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def open_run(path):
    """SWMR read when the file allows it (a running job's file), else a plain read-only open."""
    if not os.path.exists(path):
        die(f"run file '{path}': no such file")
    try:
        return h5py.File(path, "r", swmr=True)
    except OSError:
        try:
            return h5py.File(path, "r")
        except OSError as e:
            die(f"cannot open run file '{path}': {e}")


def series(f, name):
    if name not in f:
        return np.zeros(0)
    d = f[name]
    d.refresh()  # SWMR: see rows flushed since the file was opened
    return d[()]


def scalar(f, name):
    if name not in f:
        return math.nan
    d = f[name]
    d.refresh()
    v = float(np.asarray(d[()]).reshape(-1)[0])
    return v


def attr(f, name, default=""):
    v = f.attrs.get(name, default)
    return v.decode() if isinstance(v, bytes) else v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="run file (results/<run>/run.h5)")
    ap.add_argument("-o", "--output", default="curves.png", help="PNG to write (default curves.png)")
    ap.add_argument("--title", help="figure title (default: task, seeds and file)")
    args = ap.parse_args()

    f = open_run(args.run)
    if S["attr_task"] not in f.attrs or S["train_api_calls"] not in f:
        die(f"'{args.run}' is not a bbt run file (no 'task' attribute or /train/api_calls)")
    task, metric = attr(f, S["attr_task"]), attr(f, S["attr_metric"], "metric")
    seeds = f"split_seed {attr(f, S['attr_split_seed'], '?')}, seed {attr(f, S['attr_seed'], '?')}"
    calls = series(f, S["train_api_calls"])
    best = series(f, S["train_best_loss"])
    mean = series(f, S["train_mean_loss"])
    n = min(len(calls), len(best), len(mean))  # a live writer may be between appends
    calls, best, mean = calls[:n], best[:n], mean[:n]
    dev_calls = series(f, S["dev_api_calls"])
    dev_metric = series(f, S["dev_metric"])
    m = min(len(dev_calls), len(dev_metric))
    dev_calls, dev_metric = dev_calls[:m], dev_metric[:m]
    test, initial = scalar(f, S["test_metric"]), scalar(f, S["test_initial_metric"])
    finished = S["run_finished"] in f and scalar(f, S["run_finished"]) == 1
    f.close()

    fig, (ax_loss, ax_dev) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    if n:
        ax_loss.plot(calls, best, label="best of generation", color="tab:blue", lw=1.2)
        ax_loss.plot(calls, mean, label="generation mean", color="tab:orange", lw=1.2, alpha=0.8)
        ax_loss.legend(loc="upper right")
    else:
        ax_loss.text(0.5, 0.5, "no generation yet", ha="center", va="center", transform=ax_loss.transAxes)
    ax_loss.set_ylabel("train loss")
    ax_loss.grid(alpha=0.3)

    if m:
        ax_dev.plot(dev_calls, 100 * dev_metric, marker="o", ms=3, color="tab:green", label=f"dev {metric}")
        i = int(np.nanargmax(dev_metric)) if np.isfinite(dev_metric).any() else None
        if i is not None:
            ax_dev.plot([dev_calls[i]], [100 * dev_metric[i]], marker="*", ms=12, color="tab:red",
                        label=f"best dev {100 * dev_metric[i]:.2f} (kept z)")
    else:
        ax_dev.text(0.5, 0.5, "no dev evaluation yet", ha="center", va="center", transform=ax_dev.transAxes)
    if math.isfinite(initial):
        ax_dev.axhline(100 * initial, color="gray", ls=":", label=f"test, z = 0: {100 * initial:.2f}")
    if math.isfinite(test):
        ax_dev.axhline(100 * test, color="tab:purple", ls="--", label=f"test, kept z: {100 * test:.2f}")
    if m or math.isfinite(initial) or math.isfinite(test):
        ax_dev.legend(loc="best", fontsize=9)
    ax_dev.set_xlabel("API calls")
    ax_dev.set_ylabel(f"{metric} x100")
    ax_dev.grid(alpha=0.3)

    status = "finished" if finished else "running/incomplete"
    title = args.title or f"{task}, {seeds} ({status}, {int(calls[-1]) if n else 0} API calls)\n{args.run}"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(args.output, dpi=100)
    except OSError as e:
        die(f"cannot write '{args.output}': {e}")
    print(args.output)


if __name__ == "__main__":
    main()

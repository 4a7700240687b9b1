"""Chapter 8's induction heads over several seeds: is the phase change reliable at the chapter's budget?

    python benchmarks/induction.py              # seeds 0-9, the chapter's budget (about 10 s per seed on CPU)
    python benchmarks/induction.py --seeds 3    # seeds 0-2
    python benchmarks/induction.py --quick      # 2 seeds of 60 steps (a smoke run: nothing is learned)

For each seed, :mod:`course.tinygpt` trains the chapter's two-layer attention-only model and its
one-layer control (same data, seed and budget; the page uses seed 0) and measures, on 200 fresh
sequences of period 12: the step of the phase change (the repeated half's loss, averaged over 10 steps,
below ``copy_level()``; "-" if it never happens), the best previous-token score of the first layer, the
best induction score of the last layer, and the accuracy of the next-token guess on the repeated half.
The last line counts the seeds where the two-layer model has an induction head
(score >= ``INDUCTION_THRESHOLD``) and the one-layer model has none. Training takes one thread.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

import torch

from course import tinygpt as tg


@dataclass(frozen=True)
class SeedRow:
    seed: int
    phase_step: int | None
    previous: float  # best previous-token score of the first layer (two layers)
    induction: float  # best induction score of the last layer (two layers)
    accuracy: float  # repeated half, two layers
    control_induction: float  # best induction score of the one-layer model
    control_accuracy: float
    seconds: float  # both trainings


def measure(seed: int, steps: int | None = None) -> SeedRow:
    """Train both models for ``seed`` (``steps``: the chapter's budget when None) and measure them."""
    run = tg.InductionRun(seed=seed) if steps is None else tg.InductionRun(seed=seed, steps=steps)
    two, one = tg.train_induction(run), tg.train_induction(replace(run, n_layers=1))
    evaluation = tg.eval_batch(run.task, period=12)
    scores, control = tg.head_scores(two.model, evaluation), tg.head_scores(one.model, evaluation)
    return SeedRow(
        seed, tg.phase_change_step(two.losses["repeat"], tg.copy_level(run.task)),
        scores["previous"][0].max().item(), scores["induction"][-1].max().item(),
        tg.copy_metrics(two.model, evaluation)["acc_repeat"], control["induction"].max().item(),
        tg.copy_metrics(one.model, evaluation)["acc_repeat"], two.seconds + one.seconds,
    )


def table(rows: list[SeedRow]) -> list[str]:
    """The rows as a fixed-width text table, and a last line that counts the seeds that behave."""
    head = (f"{'seed':>4} {'phase step':>10} {'previous':>8} {'induction':>9} {'accuracy':>8} "
            f"{'1-layer induction':>17} {'1-layer accuracy':>16} {'train s':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.seed:4d} {r.phase_step if r.phase_step else '-':>10} {r.previous:8.2f} {r.induction:9.2f} "
                     f"{r.accuracy:8.1%} {r.control_induction:17.2f} {r.control_accuracy:16.1%} {r.seconds:7.1f}")
    good = sum(r.induction >= tg.INDUCTION_THRESHOLD > r.control_induction for r in rows)
    lines.append(f"{good} of {len(rows)} seeds: an induction head (score >= {tg.INDUCTION_THRESHOLD}) in two layers, "
                 "none in one")
    return lines


def main(argv: list[str] | None = None) -> list[SeedRow]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 ... N-1 (default 10)")
    parser.add_argument("--quick", action="store_true", help="2 seeds of 60 steps (smoke run)")
    args = parser.parse_args(argv)
    seeds, steps = (2, 60) if args.quick else (args.seeds, None)
    print(f"torch {torch.__version__}, {tg.InductionRun(steps=steps or tg.InductionRun().steps)}")
    rows = []
    for seed in range(seeds):
        rows.append(measure(seed, steps))
    print("\n".join(table(rows)))
    return rows


if __name__ == "__main__":
    main()

"""Chapter 7's tiny transformer: MHA vs GQA vs MQA at the same training budget, and decoding with and without
the KV cache.

    python benchmarks/tinyformer.py            # the chapter's budget: 3 models of 120 steps (about 10 s on CPU)
    python benchmarks/tinyformer.py --quick    # 30 steps each (a smoke run: the accuracy is meaningless)

Each model of :mod:`course.tinyformer` is trained with the same seed, batch and number of steps; only
``n_kv_heads`` of the decoder's self-attention changes (4 = MHA, 2 = GQA, 1 = MQA). For each the table gives
the training time, the mean loss of the last 20 steps, the held-out sentence accuracy (greedy decoding with
the cache), the share of target words whose strongest cross-attention (last decoder layer, heads averaged)
falls on their aligned source word, the float32 KV cache of decoding ``--batch`` sentences for ``--seq-len`` steps
(chapter 5's ``kv_cache_bytes``), and the generated tokens per second of greedy decoding with and without
the cache (best of 3, one thread). Training takes one thread too (tiny matrices; steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from course import tinyformer as tf


def table(rows: list[tf.VariantRow]) -> list[str]:
    """The rows as a fixed-width text table."""
    head = (f"{'variant':8} {'kv heads':>8} {'train s':>8} {'loss':>8} {'accuracy':>9} {'alignment':>9} "
            f"{'KV cache':>10} {'tok/s cache':>12} {'tok/s no cache':>15} {'speed-up':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.variant:8} {r.n_kv_heads:8d} {r.train_seconds:8.1f} {r.final_loss:8.4f} {r.accuracy:9.1%} "
            f"{r.alignment:9.1%} {r.cache_bytes / 1024:8.0f} KiB {r.tokens_per_s_cached:12,.0f} "
            f"{r.tokens_per_s_uncached:15,.0f} {r.tokens_per_s_cached / r.tokens_per_s_uncached:8.1f}x"
        )
    return lines


def main(argv: list[str] | None = None) -> list[tf.VariantRow]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 training steps per model (smoke run)")
    parser.add_argument("--batch", type=int, default=64, help="sentences decoded at once (default 64)")
    parser.add_argument("--seq-len", type=int, default=64, help="tokens generated per sentence (default 64)")
    args = parser.parse_args(argv)
    config = tf.Config(steps=30) if args.quick else tf.Config()
    rows = tf.compare_variants((4, 2, 1), batch=args.batch, seq_len=args.seq_len, config=config)
    print(f"torch {torch.__version__}, {dataclasses.replace(config, n_kv_heads=0)} (n_kv_heads varies)")
    print(f"decoding {args.batch} held-out sentences for {args.seq_len} steps")
    print("\n".join(table(rows)))
    return rows


if __name__ == "__main__":
    main()

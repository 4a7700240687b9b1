"""Chapter 7: the decoder layer with its KV cache, greedy decoding, and the tiny transformer that learns.

The trained model is the page's own (``course.tinyformer.trained()``: same seed, same budget), trained
once per test session; the thresholds are the ones the chapter states: alignment >= 90 % and held-out
sentence accuracy >= 95 %.
"""

from __future__ import annotations

import math

import pytest
import torch

from course import tinyformer as tf
from solutions import DecoderLayer, GroupedQueryAttention, MultiHeadAttention, greedy_decode

pytestmark = pytest.mark.ch7


@pytest.fixture(scope="session")
def trained() -> tf.Trained:
    return tf.trained()


@pytest.fixture(scope="session")
def test_batch(trained: tf.Trained) -> tf.Batch:
    return tf.encode_batch(trained.test)


def _layer(seed: int = 0, n_kv_heads: int = 2) -> DecoderLayer:
    torch.manual_seed(seed)
    layer = DecoderLayer(16, 4, n_kv_heads, 32)
    with torch.no_grad():  # non-trivial norms, so that a swapped norm changes the answer
        for name, p in layer.named_parameters():
            if name.startswith("norm"):
                p.normal_()
    return layer.eval()


# --- the task ------------------------------------------------------------------------------------


def test_translation_reorders_words_and_records_the_alignment() -> None:
    s = tf.translate("big", "cat", "chases", None, "dog", "quickly")
    assert s.src == ("big", "cat", "chases", "dog", "quickly")
    assert s.tgt == ("hayaku", "neko", "oki", "inu", "oou")  # ADV' NOUN' ADJ' NOUN' VERB'
    assert s.alignment == (4, 1, 0, 3, 2)
    for t, i in enumerate(s.alignment):
        assert tf.LEXICON[s.src[i]] == s.tgt[t]


def test_the_grammar_and_the_held_out_split() -> None:
    sentences = tf.all_sentences()
    assert len(sentences) == 7 * 8 * 5 * 7 * 8 * 4
    assert len({s.src for s in sentences}) == len(sentences)
    train, test = tf.split(0)
    assert len(test) == 500 and len(train) + len(test) == len(sentences)
    assert not {s.src for s in test} & {s.src for s in train}, "held-out sentences are never trained on"


def test_encode_batch_pads_and_shifts() -> None:
    s = tf.translate(None, "cat", "sees", None, "dog", None)
    b = tf.encode_batch([s])
    assert b.src.shape == (1, tf.MAX_SRC) and b.tgt_in.shape == b.tgt_out.shape == (1, tf.MAX_TGT)
    assert b.tgt_in[0, 0] == tf.BOS and torch.equal(b.tgt_in[0, 1:4], b.tgt_out[0, :3])
    assert b.tgt_out[0, 3] == tf.EOS and (b.tgt_out[0, 4:] == tf.PAD).all()
    assert b.alignment[0].tolist() == [0, 2, 1, -1, -1, -1, -1]
    assert tf.words(b.tgt_out[0]) == ["neko", "inu", "miru"]


# --- DecoderLayer --------------------------------------------------------------------------------


def test_decoder_layer_is_built_from_the_course_modules() -> None:
    layer = DecoderLayer(16, 4, 2, 32)
    assert isinstance(layer.self_attn, GroupedQueryAttention) and layer.self_attn.n_kv_heads == 2
    assert isinstance(layer.cross_attn, MultiHeadAttention) and layer.cross_attn.n_heads == 4
    assert layer.ff1.weight.shape == (32, 16) and layer.ff2.weight.shape == (16, 32)


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_decoder_layer_cached_steps_equal_the_full_forward(n_kv_heads: int) -> None:
    layer = _layer(1, n_kv_heads)
    x, memory = torch.randn(2, 6, 16), torch.randn(2, 5, 16)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])[:, None, :]
    with torch.no_grad():
        full, (k, v), cross = layer(x, memory, mask)
        assert full.shape == (2, 6, 16) and cross.shape == (2, 4, 6, 5)
        assert k.shape == v.shape == (2, n_kv_heads, 6, 4)
        steps, cache = [], None
        for t in range(6):
            out, cache, _ = layer(x[:, t : t + 1], memory, mask, kv_cache=cache)
            steps.append(out)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cache[0], k)


def test_decoder_layer_is_causal_and_respects_the_memory_mask() -> None:
    layer = _layer(2)
    x, memory = torch.randn(1, 5, 16), torch.randn(1, 4, 16)
    mask = torch.tensor([True, True, False, False])[None, None, :]
    with torch.no_grad():
        out, _, cross = layer(x, memory, mask)
        changed = x.clone()
        changed[:, 3:] = torch.randn(1, 2, 16)
        out2, _, _ = layer(changed, memory, mask)
        padded = memory.clone()
        padded[:, 2:] = 100.0
        out3, _, _ = layer(x, padded, mask)
    assert torch.equal(cross[..., 2:], torch.zeros_like(cross[..., 2:])), "no weight on padded source tokens"
    torch.testing.assert_close(cross.sum(-1), torch.ones(1, 4, 5))
    torch.testing.assert_close(out2[:, :3], out[:, :3], msg="later target tokens cannot change earlier outputs")
    assert not torch.allclose(out2[:, 3:], out[:, 3:])
    torch.testing.assert_close(out3, out, msg="padded source tokens cannot change the output")


def test_decoder_layer_matches_its_definition() -> None:
    """Pre-norm residual blocks written out with the layer's own submodules."""
    layer = _layer(3)
    x, memory = torch.randn(2, 4, 16), torch.randn(2, 3, 16)
    with torch.no_grad():
        got, _, _ = layer(x, memory)
        h = x + layer.self_attn(layer.norm1(x))[0]
        q = layer.norm2(h)
        h = h + layer.cross_attn(q, memory, memory)[0]
        want = h + layer.ff2(torch.relu(layer.ff1(layer.norm3(h))))
    torch.testing.assert_close(got, want)


# --- greedy decoding -----------------------------------------------------------------------------


def test_greedy_decode_with_and_without_cache_give_the_same_tokens_untrained() -> None:
    model = tf.build_model(tf.Config(seed=5)).eval()
    src = tf.encode_batch(tf.all_sentences()[::997]).src
    with torch.no_grad():
        cached = greedy_decode(model, src, tf.BOS, 20, use_cache=True)
        plain = greedy_decode(model, src, tf.BOS, 20, use_cache=False)
    assert cached.shape == (src.shape[0], 20) and cached.dtype == torch.long
    assert torch.equal(cached, plain)
    assert greedy_decode(model, src, tf.BOS, 0).shape == (src.shape[0], 0)


def test_greedy_decode_takes_the_argmax_of_the_last_position() -> None:
    class Counter(torch.nn.Module):
        """A 'model' whose next token is (last token + 1) mod 5; it also records how it was called."""

        def __init__(self) -> None:
            super().__init__()
            self.lengths: list[int] = []

        def encode(self, src):
            return src.float()[..., None], None

        def decode(self, tokens, memory, memory_mask, kv_caches=None):
            self.lengths.append(tokens.shape[1])
            n_past = 0 if kv_caches is None else kv_caches
            logits = torch.nn.functional.one_hot((tokens + 1) % 5, 5).float()
            return logits, n_past + tokens.shape[1]

    src = torch.zeros(2, 3, dtype=torch.long)
    cached = Counter()
    assert greedy_decode(cached, src, 3, 4).tolist() == [[4, 0, 1, 2]] * 2
    assert cached.lengths == [1, 1, 1, 1], "with the cache, only the newest token is decoded"
    plain = Counter()
    assert greedy_decode(plain, src, 3, 4, use_cache=False).tolist() == [[4, 0, 1, 2]] * 2
    assert plain.lengths == [1, 2, 3, 4], "without the cache, the whole prefix is decoded again"


def test_trained_model_decodes_the_same_with_and_without_cache(trained: tf.Trained, test_batch: tf.Batch) -> None:
    with torch.no_grad():
        cached = greedy_decode(trained.model, test_batch.src, tf.BOS, tf.MAX_TGT, use_cache=True)
        plain = greedy_decode(trained.model, test_batch.src, tf.BOS, tf.MAX_TGT, use_cache=False)
    assert torch.equal(cached, plain)


# --- the chapter's figures -----------------------------------------------------------------------


def test_training_lowers_the_loss(trained: tf.Trained) -> None:
    assert len(trained.losses) == trained.config.steps
    assert trained.losses[0] > math.log(len(tf.TGT_WORDS)) - 1  # starts near chance
    assert max(trained.losses[-20:]) < 0.05


def test_alignment_before_is_near_chance_and_after_at_least_90_percent(
    trained: tf.Trained, test_batch: tf.Batch
) -> None:
    chance = tf.chance_share(test_batch)
    before = tf.layer_alignment(trained.initial_model(), test_batch)[-1]
    after = tf.layer_alignment(trained.model, test_batch)[-1]
    assert 0.1 < chance < 0.3
    assert abs(before - chance) < 0.1, (before, chance)
    assert after >= 0.90, after


def test_held_out_sentence_accuracy_at_least_95_percent(trained: tf.Trained) -> None:
    assert tf.sentence_accuracy(trained.model, trained.test) >= 0.95
    assert tf.sentence_accuracy(trained.initial_model(), trained.test[:50]) < 0.1


def test_alignment_share_counts_argmax_hits() -> None:
    weights = torch.tensor([[[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]]])
    assert tf.alignment_share(weights, torch.tensor([[1, 1, -1]])) == pytest.approx(0.5)
    assert tf.alignment_share(weights, torch.tensor([[1, 0, -1]])) == pytest.approx(1.0)


def test_self_attention_weights_reproduce_the_module_output(trained: tf.Trained, test_batch: tf.Batch) -> None:
    weights = tf.self_attention_weights(trained.model, test_batch, layer=0)
    n = tf.MAX_TGT
    assert weights.shape == (len(trained.test), 4, n, n)
    torch.testing.assert_close(weights.sum(-1), torch.ones(len(trained.test), 4, n))
    assert (weights.triu(1) == 0).all(), "causal: no weight on later tokens"
    attn = trained.model.decoder[0].self_attn
    seen = []
    handle = attn.register_forward_hook(lambda m, args, out: seen.append((args[0], out[0])))
    with torch.no_grad():
        trained.model(test_batch.src, test_batch.tgt_in)
    handle.remove()
    x, out = seen[0]
    with torch.no_grad():
        v = attn.v_proj(x).unflatten(-1, (attn.n_kv_heads, -1)).transpose(1, 2)
        v = v.repeat_interleave(attn.n_heads // attn.n_kv_heads, dim=1)
        again = attn.out_proj((weights @ v).transpose(1, 2).flatten(-2))
    torch.testing.assert_close(again, out)


def test_cache_bytes_follow_the_number_of_kv_heads() -> None:
    sizes = [tf.cache_bytes(tf.build_model(tf.Config(n_kv_heads=kv)), 1, 7) for kv in (4, 2, 1)]
    assert sizes[0] == 2 * 2 * 7 * 4 * 16 * 4  # K and V, 2 layers, 7 positions, 4 heads of 16 floats of 4 bytes
    assert sizes == [sizes[0], sizes[0] // 2, sizes[0] // 4]


def test_the_benchmark_runs_and_its_cache_shrinks_with_the_kv_heads(capsys) -> None:
    from benchmarks import tinyformer as bench

    rows = bench.main(["--quick", "--batch", "4", "--seq-len", "3"])
    assert [r.variant for r in rows] == ["MHA", "GQA-2", "MQA"]
    assert [r.cache_bytes for r in rows] == [tf.cache_bytes(tf.build_model(tf.Config(n_kv_heads=k)), 4, 3)
                                             for k in (4, 2, 1)]
    assert all(r.tokens_per_s_cached > 0 and r.tokens_per_s_uncached > 0 for r in rows)
    assert "GQA-2" in capsys.readouterr().out


def test_loss_spikes_and_final_loss_read_a_loss_curve() -> None:
    losses = [3.0, 1.0, 0.5, 2.0, 0.4, 0.1, 0.35, 0.1]
    assert tf.loss_spikes(losses) == [4, 7]  # 1-based steps whose loss is more than 3 times the previous one
    assert tf.loss_spikes(losses, factor=3.5) == [4]
    assert tf.final_loss(losses, last=2) == pytest.approx(0.225)


def test_seed_runs_train_every_variant_from_every_seed() -> None:
    runs = tf.seed_runs((4, 1), seeds=(0, 1), config=tf.Config(steps=3))
    assert [(r.variant, r.seed) for r in runs] == [("MHA", 0), ("MHA", 1), ("MQA", 0), ("MQA", 1)]
    assert all(0 <= r.accuracy <= 1 and 0 <= r.alignment <= 1 and r.spikes >= 0 for r in runs)
    assert runs[0].final_loss != runs[1].final_loss  # another seed, another run


def test_the_learning_rate_decays_to_zero_unless_asked_not_to() -> None:
    decayed, constant = (tf.train(tf.Config(steps=4, lr_decay=d)) for d in (True, False))
    assert decayed.losses[0] == constant.losses[0]  # the same model, batches and first step
    assert decayed.losses[-1] != constant.losses[-1]

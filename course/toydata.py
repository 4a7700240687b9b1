"""Small, deterministic toy data the book makes itself (nothing is downloaded).

Three toys, one per idea:

* :func:`paint_palette` — chapter 1's "paint mixing": keys are directions on a colour wheel, values are
  RGB colours, so a soft lookup *mixes paint*.
* :func:`toy_sentence` / :func:`sentence_embeddings` / :func:`grammar_projections` — a six-word
  sentence with hand-made word features and projections that make self-attention readable
  (each word looks for the kind of word it needs).
* :func:`translation_pair` — chapter 3's cross-attention toy: an English source sentence, its French
  translation, and projections under which each French word attends to the English word it
  translates (the known ``alignment``).

Every function is pure and deterministic: the same call gives the same arrays on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------------------------------
# Chapter 1: a colour wheel of paints
# --------------------------------------------------------------------------------------------------

#: Paint name -> (hue angle in degrees on the wheel, RGB colour in [0, 1]).
PAINTS: dict[str, tuple[float, tuple[float, float, float]]] = {
    "red": (0.0, (0.85, 0.12, 0.12)),
    "yellow": (72.0, (0.97, 0.82, 0.10)),
    "green": (144.0, (0.15, 0.62, 0.25)),
    "blue": (216.0, (0.13, 0.30, 0.80)),
    "purple": (288.0, (0.55, 0.20, 0.65)),
}


@dataclass(frozen=True)
class Palette:
    """A lookup table of paints.

    Attributes:
        names: ``n`` paint names, in table order.
        keys: ``(n, 2)`` unit vectors, the direction of each paint on the colour wheel.
        values: ``(n, 3)`` RGB colours in ``[0, 1]``.
    """

    names: list[str]
    keys: np.ndarray
    values: np.ndarray


def wheel_direction(angle_degrees: float) -> np.ndarray:
    """The unit vector ``(2,)`` at ``angle_degrees`` on the colour wheel (0 = red, counter-clockwise)."""
    a = np.deg2rad(angle_degrees)
    return np.array([np.cos(a), np.sin(a)])


def paint_palette() -> Palette:
    """The five paints of :data:`PAINTS` as a key/value table: keys ``(5, 2)``, values ``(5, 3)``."""
    names = list(PAINTS)
    keys = np.stack([wheel_direction(PAINTS[n][0]) for n in names])
    values = np.array([PAINTS[n][1] for n in names])
    return Palette(names=names, keys=keys, values=values)


# --------------------------------------------------------------------------------------------------
# A toy sentence with hand-made word features (chapters 2 and 3)
# --------------------------------------------------------------------------------------------------

#: The word classes of the toy grammar; each is one feature of a word's embedding.
WORD_CLASSES = ("determiner", "noun", "verb", "preposition")

#: Toy vocabulary: word -> word class.
VOCAB: dict[str, str] = {
    "the": "determiner",
    "a": "determiner",
    "cat": "noun",
    "dog": "noun",
    "mat": "noun",
    "sat": "verb",
    "slept": "verb",
    "on": "preposition",
    "under": "preposition",
}

#: For each class, the class it "looks for" in the toy grammar (the query's question).
LOOKS_FOR: dict[str, str] = {
    "determiner": "noun",  # "the" looks for the noun it introduces
    "noun": "verb",  # a subject looks for its verb
    "verb": "noun",  # a verb looks for its subject
    "preposition": "noun",  # "on" looks for its object
}


def toy_sentence() -> list[str]:
    """``['the', 'cat', 'sat', 'on', 'the', 'mat']``: the book's running example (n = 6 tokens)."""
    return ["the", "cat", "sat", "on", "the", "mat"]


def _word_identity(word: str, size: int) -> np.ndarray:
    """A fixed pseudo-random vector ``(size,)`` for ``word``: the same word always gets the same one."""
    seed = sum((i + 1) * ord(c) for i, c in enumerate(word))  # stable across runs (unlike hash())
    v = np.random.default_rng(seed).normal(size=size)
    return v / np.linalg.norm(v)


def sentence_embeddings(tokens: list[str], identity_dims: int = 4, position_scale: float = 0.5) -> np.ndarray:
    """Hand-made embeddings ``(n, d_model)`` for ``tokens``.

    Features, left to right (``d_model = 4 + identity_dims + 2``):

    * 4 word-class features (one-hot over :data:`WORD_CLASSES`);
    * ``identity_dims`` features that tell words apart (a fixed unit vector per word);
    * 2 position features ``position_scale * (cos, sin)`` of the token's position, so that nearby
      tokens look alike.
    """
    n = len(tokens)
    rows = []
    for i, word in enumerate(tokens):
        word_class = np.zeros(len(WORD_CLASSES))
        word_class[WORD_CLASSES.index(VOCAB[word])] = 1.0
        angle = np.pi * i / max(n, 1)
        position = position_scale * np.array([np.cos(angle), np.sin(angle)])
        rows.append(np.concatenate([word_class, _word_identity(word, identity_dims), position]))
    return np.array(rows)


def grammar_projections(
    identity_dims: int = 4, strength: float = 4.0, locality: float = 4.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projections ``W_q, W_k (d_model, d_k)`` and ``W_v (d_model, d_v)`` for the toy grammar.

    The query of a word asks for the class it :data:`LOOKS_FOR`; the key of a word announces its own
    class; both also carry the position features, so a word prefers the *nearest* word of that class.
    ``W_v`` keeps the word-class and identity features. ``d_k = 6``, ``d_v = 4 + identity_dims``.
    """
    n_cls = len(WORD_CLASSES)
    d_model = n_cls + identity_dims + 2
    d_k = n_cls + 2
    W_q = np.zeros((d_model, d_k))
    W_k = np.zeros((d_model, d_k))
    for c, name in enumerate(WORD_CLASSES):
        W_q[c, WORD_CLASSES.index(LOOKS_FOR[name])] = strength
        W_k[c, c] = 1.0
    pos = slice(n_cls + identity_dims, d_model)
    W_q[pos, n_cls:] = np.sqrt(locality) * np.eye(2)
    W_k[pos, n_cls:] = np.sqrt(locality) * np.eye(2)
    W_v = np.zeros((d_model, n_cls + identity_dims))
    W_v[: n_cls + identity_dims] = np.eye(n_cls + identity_dims)
    # scaled by d_k ** 0.25 each, so the 1/sqrt(d_k) inside attention cancels and `strength` is the score scale
    return W_q * d_k**0.25, W_k * d_k**0.25, W_v


# --------------------------------------------------------------------------------------------------
# Chapter 3: a toy translation for cross-attention
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranslationPair:
    """A source sentence, its translation, and the projections of a toy cross-attention.

    Attributes:
        source: the ``n_k`` encoder tokens (English).
        target: the ``n_q`` decoder tokens (French).
        X_source: ``(n_k, d_model)`` encoder states.
        X_target: ``(n_q, d_model)`` decoder states.
        W_q, W_k: ``(d_model, d_k)``; W_v: ``(d_model, d_v)``.
        alignment: for each target position, the source position it translates.
    """

    source: list[str]
    target: list[str]
    X_source: np.ndarray
    X_target: np.ndarray
    W_q: np.ndarray
    W_k: np.ndarray
    W_v: np.ndarray
    alignment: list[int]


#: English source, French target, and which source word each target word translates.
_SOURCE = ["the", "cat", "sat", "on", "the", "mat"]
_TARGET = ["le", "chat", "s'est", "assis", "sur", "le", "tapis"]
_ALIGNMENT = [0, 1, 2, 2, 3, 4, 5]
#: The meaning ("concept") of each word; a word and its translation share a concept.
_CONCEPT = {"the": 0, "le": 0, "cat": 1, "chat": 1, "sat": 2, "s'est": 2, "assis": 2, "on": 3, "sur": 3, "mat": 4,
            "tapis": 4}


def _concept_states(tokens: list[str], n_concepts: int, position_scale: float) -> np.ndarray:
    """``(n, n_concepts + 2)``: one-hot concept plus the (cos, sin) of the relative position in the sentence."""
    n = len(tokens)
    out = np.zeros((n, n_concepts + 2))
    for i, word in enumerate(tokens):
        out[i, _CONCEPT[word]] = 1.0
        angle = 0.5 * np.pi * i / max(n - 1, 1)
        out[i, n_concepts:] = position_scale * np.array([np.cos(angle), np.sin(angle)])
    return out


def translation_pair(sharpness: float = 3.0, position_scale: float = 1.0) -> TranslationPair:
    """English "the cat sat on the mat" (``n_k = 6``) and French "le chat s'est assis sur le tapis" (``n_q = 7``).

    Decoder and encoder states hold the word's meaning and its relative position in the sentence, so
    with the returned projections each French word attends mostly to the English word it translates;
    the two "le" tell the two "the" apart by position. ``sharpness`` scales the scores.
    """
    n_concepts = 1 + max(_CONCEPT.values())
    X_source = _concept_states(_SOURCE, n_concepts, position_scale)
    X_target = _concept_states(_TARGET, n_concepts, position_scale)
    d_model = n_concepts + 2
    W = np.sqrt(sharpness) * d_model**0.25 * np.eye(d_model)  # cancels the 1/sqrt(d_k) of attention
    return TranslationPair(
        source=list(_SOURCE),
        target=list(_TARGET),
        X_source=X_source,
        X_target=X_target,
        W_q=W.copy(),
        W_k=W.copy(),
        W_v=np.eye(d_model),
        alignment=list(_ALIGNMENT),
    )


# --------------------------------------------------------------------------------------------------
# Random inputs for experiments
# --------------------------------------------------------------------------------------------------


def random_qkv(
    n_q: int, n_k: int, d_k: int, d_v: int | None = None, batch: tuple[int, ...] = (), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standard-normal ``Q (*batch, n_q, d_k)``, ``K (*batch, n_k, d_k)``, ``V (*batch, n_k, d_v)`` from ``seed``."""
    rng = np.random.default_rng(seed)
    d_v = d_k if d_v is None else d_v
    return (
        rng.standard_normal((*batch, n_q, d_k)),
        rng.standard_normal((*batch, n_k, d_k)),
        rng.standard_normal((*batch, n_k, d_v)),
    )

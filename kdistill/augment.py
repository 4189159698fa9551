"""Enlarging a small transfer set with perturbed copies of its texts (Tang et al., 2019, section 3.2).

Distillation only teaches the student what the teacher says about the texts it
sees; a pool of a few thousand unlabelled texts (AG News here) leaves most of
the teacher's function unseen. Each copy of a text is perturbed word by word,
and the teacher labels the copies like any other unlabelled text:

- deletion (probability `drop_prob` per word): Tang et al. replace the word by
  `[MASK]`; our student's tokenizer splits that string into three pieces, so the
  word is dropped instead, which asks the same question (what is this word worth?);
- replacement (`swap_prob` per word): a word drawn from the corpus at its
  frequency (Tang et al. draw one of the same part of speech; that measured
  0.77 points lower in the best SST-2 recipe, docs/IDEAS.md);
- n-gram sampling (`ngram_prob` per copy): the copy keeps only a random window
  of the text, 1 to `max(max_ngram, words / 2)` words long.

Each round copies every text once.

Example:

```python
extra = augment_texts(["a gripping , funny film"], copies=4, seed=0)
```
"""

import numpy as np

# The enlargements measured to help (N=1000, mean of 3 seeds, docs/appendix/gap and small_pool, dev):
# SST-2's 67k-text pool doubled (part of the best recipe), and its pool cut to 3k or 10k texts grown to
# 60k (+1.80, +1.34). AG News' 4k pool of news items (median 37 words) gained nothing at 60k (+0.07).
# SST-2's texts are phrases (median 7 words). The threshold between them is not measured yet.
AUTO_MIN_TEXTS = 60_000
AUTO_MAX_TEXTS = 134_000
SHORT_TEXT_WORDS = 20


def auto_size(num_texts, median):
    """How many texts `augment_to="auto"` grows a transfer set of `num_texts` texts of `median` words
    (`median_words`) to: short texts to `AUTO_MIN_TEXTS`, or doubled up to `AUTO_MAX_TEXTS`; longer texts (and
    larger sets) not at all."""
    if not num_texts or median > SHORT_TEXT_WORDS:
        return 0
    return min(max(2 * num_texts, AUTO_MIN_TEXTS), AUTO_MAX_TEXTS)


def target_size(augment_to, num_texts, median):
    """The transfer set's size after copies: `augment_to` texts, or `auto_size`'s for "auto"."""
    return auto_size(num_texts, median) if augment_to == "auto" else int(augment_to or 0)


def median_words(texts):
    return float(np.median([len(str(t).split()) for t in texts])) if len(texts) else 0.0


# Issue #29, chosen on 1,000 validation rows carved from train: a student keeping the teacher's whole vocabulary
# and taught each of its words closed most of MPQA's gap (phrases of median 2 words) on three seeds
# (docs/validation/phrases), and moved SUBJ (median 22 words), SST-5 and CR (18) by noise on one
# (docs/validation); on SUBJ's three seeds it was +0.30, noise that costs a 3.7x larger student (docs/validation/subj).
# Lengths between are not measured: the rule stops short of SST-2's (7) and CLINC150's (8).
PHRASE_WORDS = 4


def phrases(texts):
    """Whether `texts` are phrases of a few words (median up to `PHRASE_WORDS`). There each word carries much of
    the label, and a word the pool never shows reaches a student of 7,000 pieces as [UNK]: the `auto` rule of
    `--vocabulary_size` and `--vocabulary_words`."""
    return 0 < median_words(texts) <= PHRASE_WORDS


def augment_texts(texts, copies, seed=0, drop_prob=0.1, swap_prob=0.1, ngram_prob=0.25, max_ngram=5):
    """Up to `copies` perturbed versions of each text, without repeats of each other or of `texts`.

    Deterministic for a given `seed`, so the teacher's logits of the copies are
    cached like those of any other text.
    """
    texts = [str(t) for t in texts]
    if copies <= 0 or not texts:
        return []
    rng = np.random.default_rng(seed)
    words = [t.split() for t in texts]
    # A uniform draw from every word of the corpus is a draw of a word at its frequency.
    corpus = [word for text_words in words for word in text_words]
    if not corpus:
        return []
    seen = set(texts)
    augmented = []
    for _ in range(copies):
        for text_words in words:
            if not text_words:
                continue
            copy = _perturb(text_words, rng, corpus, drop_prob, swap_prob, ngram_prob, max_ngram)
            text = " ".join(copy)
            if text and text not in seen:
                seen.add(text)
                augmented.append(text)
    return augmented


def vocabulary_words(vocabulary, exclude=()):
    """Each whole word of a WordPiece `vocabulary` as a text of its own, except those in `exclude`.

    A small pool leaves many words the teacher knows unseen by the student: on MPQA's validation rows, the
    25% of phrases with a piece outside the student's vocabulary are where the student falls behind (71% against
    the teacher's 92%; the rest: 88% against 88%). The teacher's label of each word alone tells the student
    what the word is worth. Continuation pieces (`##ing`), special and unused tokens, and pieces without a
    letter are left out.
    """
    exclude = set(exclude)
    return [piece for piece in vocabulary
            if not piece.startswith("##") and not (piece.startswith("[") and piece.endswith("]"))
            and any(c.isalpha() for c in piece) and piece not in exclude]


def _perturb(words, rng, corpus, drop_prob, swap_prob, ngram_prob, max_ngram):
    draw = rng.random(len(words))
    kept = []
    for word, p in zip(words, draw):
        if p < drop_prob:
            continue
        if p < drop_prob + swap_prob:
            word = corpus[rng.integers(len(corpus))]
        kept.append(word)
    if kept and rng.random() < ngram_prob:
        length = int(rng.integers(1, max(max_ngram, len(kept) // 2) + 1))
        start = int(rng.integers(0, max(len(kept) - length, 0) + 1))
        kept = kept[start : start + length]
    return kept

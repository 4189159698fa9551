"""Enlarging a small transfer set with perturbed copies of its texts (Tang et al., 2019, section 3.2).

Distillation only teaches the student what the teacher says about the texts it
sees; a pool of a few thousand unlabelled texts (AG News here) leaves most of
the teacher's function unseen. Each copy of a text is perturbed word by word,
and the teacher labels the copies like any other unlabelled text:

- deletion (probability `drop_prob` per word): Tang et al. replace the word by
  `[MASK]`; our student's tokenizer splits that string into three pieces, so the
  word is dropped instead, which asks the same question (what is this word worth?);
- replacement (`swap_prob` per word): a word drawn from the corpus at its
  frequency; with `same_pos`, as in Tang et al., from the words the corpus
  uses as the same part of speech, at their frequency in that role (tags from
  TextBlob's bundled Brill tagger, which needs no download);
- n-gram sampling (`ngram_prob` per copy): the copy keeps only a random window
  of the text, 1 to `max(max_ngram, words / 2)` words long.

Each round copies every text once, or, with `by_length`, as many texts drawn with
probability proportional to their number of words. A pool of short phrases (SST-2's
median is 7 words, its dev sentences' 19) then yields copies that are fewer repeats
and closer in length to whole sentences.

Example:

```python
extra = augment_texts(["a gripping , funny film"], copies=4, seed=0)
extra = augment_texts(["a gripping , funny film"], copies=4, seed=0, same_pos=True)
extra = augment_texts(["a film", "a gripping , funny film"], copies=4, seed=0, by_length=True)
```
"""

import numpy as np


def augment_texts(texts, copies, seed=0, drop_prob=0.1, swap_prob=0.1, ngram_prob=0.25, max_ngram=5,
                  same_pos=False, by_length=False):
    """Up to `copies` perturbed versions of each text, without repeats of each other or of `texts`.

    Deterministic for a given `seed`, so the teacher's logits of the copies are
    cached like those of any other text.
    """
    texts = [str(t) for t in texts]
    if copies <= 0 or not texts:
        return []
    rng = np.random.default_rng(seed)
    words = [t.split() for t in texts]
    # A uniform draw from every word of the corpus is a draw of a word at its frequency; one
    # from the words of a part of speech is Tang et al.'s unigram distribution renormalised by tag.
    tags = part_of_speech_tags(words) if same_pos else [[None] * len(text_words) for text_words in words]
    choices = {}
    for text_words, text_tags in zip(words, tags):
        for word, tag in zip(text_words, text_tags):
            choices.setdefault(tag, []).append(word)
    lengths = np.asarray([len(text_words) for text_words in words], dtype=np.float64)
    if not lengths.sum():
        return []
    by_words = lengths / lengths.sum()
    seen = set(texts)
    augmented = []
    for _ in range(copies):
        sources = rng.choice(len(words), size=len(words), p=by_words) if by_length else range(len(words))
        for text_words, text_tags in ((words[i], tags[i]) for i in sources):
            if not text_words:
                continue
            copy = _perturb(text_words, text_tags, rng, choices, drop_prob, swap_prob, ngram_prob, max_ngram)
            text = " ".join(copy)
            if text and text not in seen:
                seen.add(text)
                augmented.append(text)
    return augmented


def part_of_speech_tags(words):
    """Penn Treebank tags, one per word of each list in `words` (a text split on spaces)."""
    from textblob.en import tag  # imports NLTK, which only augmentation by part of speech needs

    tags = []
    for text_words in words:
        # tokenize=False keeps our split: one tag per word.
        text_tags = [pos for _, pos in tag(" ".join(text_words), tokenize=False)]
        if len(text_tags) != len(text_words):
            raise ValueError(f"the tagger gave {len(text_tags)} tags for the {len(text_words)} words of "
                             f"{' '.join(text_words)[:80]!r}")
        tags.append(text_tags)
    return tags


def _perturb(words, tags, rng, choices, drop_prob, swap_prob, ngram_prob, max_ngram):
    draw = rng.random(len(words))
    kept = []
    for word, tag, p in zip(words, tags, draw):
        if p < drop_prob:
            continue
        if p < drop_prob + swap_prob:
            word = choices[tag][rng.integers(len(choices[tag]))]
        kept.append(word)
    if kept and rng.random() < ngram_prob:
        length = int(rng.integers(1, max(max_ngram, len(kept) // 2) + 1))
        start = int(rng.integers(0, max(len(kept) - length, 0) + 1))
        kept = kept[start : start + length]
    return kept

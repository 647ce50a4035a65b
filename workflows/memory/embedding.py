"""Text embeddings for incident memory: 384 floats per text, the size of the `knowledge` column.

`HashingEmbedder` (the default) needs no model and no network: character and word n-grams,
hashed into 384 signed buckets. It finds the same incident told again ("DiskFull on db-7" and
"磁盘空间不足 db-2") across hosts and word order, in Chinese and English; it cannot match a text
to its translation or to a synonym. `OpenAIEmbedder` calls an embeddings API (OpenAI or a
compatible server) for that; the model must support 384 dimensions.

Usage::

    embedder = build_embedder("hashing")
    vectors = await embedder.embed(["DiskFull on db-7", "磁盘空间不足 db-2"])
    embedder.name  # stored beside each vector: 'hashing-ngram-384-v1'
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from hashlib import blake2b
from operator import add
from typing import TYPE_CHECKING, Protocol

from storage.models import EMBEDDING_DIMENSIONS

if TYPE_CHECKING:
    from openai import AsyncOpenAI


class EmbeddingError(Exception):
    """The texts could not be embedded (the service failed or answered with the wrong shape)."""


class Embedder(Protocol):
    """Turns texts into vectors of `dimensions` floats, one per text, in order."""

    name: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


# --- the hashing embedder ---------------------------------------------------------------------

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(rf"[^\W_{_CJK}]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DIGITS = re.compile(r"[0-9]+")
# the compatibility forms common in Chinese text, replaced first so that NFKC is rarely needed
_FULLWIDTH = {
    "，": ",",
    "：": ":",
    "；": ";",
    "！": "!",
    "？": "?",
    "（": "(",
    "）": ")",
    "\u3000": " ",
}
_STOP = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is"}
    | {"it", "of", "on", "or", "the", "this", "that", "to", "was", "were", "with", "0"}
)
_HAN_SKIP = frozenset(" 的了是在和与及")

# feature weights: whole words and CJK bigrams carry the meaning, word bigrams the phrasing;
# CJK single characters and the character trigrams of Latin words (typo tolerance) only nudge
WORD, PAIR, TRIGRAM, HAN1, HAN2, HAN3 = 1.0, 0.7, 0.25, 0.35, 1.0, 0.7
_CACHE_LIMIT = 100_000
# the vector of a text with no features: a fixed unit vector, so that its cosine is defined
_EMPTY = (1.0, *([0.0] * (EMBEDDING_DIMENSIONS - 1)))

Slots = tuple[tuple[int, float], ...]


def normalise(text: str) -> str:
    """NFKC, camelCase split, lower case, every run of digits as `0`, whitespace collapsed."""
    if not text.isascii():
        for wide, narrow in _FULLWIDTH.items():
            if wide in text:
                text = text.replace(wide, narrow)
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
    text = _CAMEL.sub(" ", text).lower()
    return " ".join(_DIGITS.sub("0", text).split())


def _hash(namespace: bytes, feature: str) -> tuple[int, int]:
    """(bucket, sign) of a feature: a keyed blake2b, the same in every process."""
    digest = blake2b(feature.encode(), digest_size=8, person=namespace).digest()
    return int.from_bytes(digest[:4], "little") % EMBEDDING_DIMENSIONS, 1 - 2 * (digest[4] & 1)


def _merged(pairs: list[tuple[int, float]]) -> Slots:
    merged: dict[int, float] = {}
    for bucket, weight in pairs:
        merged[bucket] = merged.get(bucket, 0.0) + weight
    return tuple((bucket, weight) for bucket, weight in merged.items() if weight)


def _word_slots(word: str) -> Slots:
    """A Latin word: the word itself and the character trigrams of ` word `."""
    bucket, sign = _hash(b"word", word)
    pairs = [(bucket, sign * WORD)]
    padded = f" {word} "
    for i in range(len(padded) - 2):
        bucket, sign = _hash(b"tri", padded[i : i + 3])
        pairs.append((bucket, sign * TRIGRAM))
    return _merged(pairs)


def _gram_slots(namespace: bytes, weight: float) -> Callable[[str], Slots]:
    def slots(feature: str) -> Slots:
        bucket, sign = _hash(namespace, feature)
        return ((bucket, sign * weight),)

    return slots


_KINDS: dict[str, Callable[[str], Slots]] = {
    "word": _word_slots,
    "pair": _gram_slots(b"pair", PAIR),
    "han1": _gram_slots(b"han1", HAN1),
    "han2": _gram_slots(b"han2", HAN2),
    "han3": _gram_slots(b"han3", HAN3),
}


def features(text: str) -> dict[str, Counter[str]]:
    """The features of `text` by kind, counted: Latin words (each with its character
    trigrams) and word pairs, CJK characters, bigrams and trigrams."""
    norm = normalise(text)
    words = [word for word in _WORD.findall(norm) if word not in _STOP]
    han = " ".join(_CJK_RUN.findall(norm))  # n-grams across a gap are harmless features
    single = Counter(han)
    for skipped in _HAN_SKIP & single.keys():
        del single[skipped]
    return {
        "word": Counter(words),
        "pair": Counter(map("{} {}".format, words, words[1:])),
        "han1": single,
        "han2": Counter(map(add, han, han[1:])),
        "han3": Counter(map(add, map(add, han, han[1:]), han[2:])),
    }


class HashingEmbedder:
    """Signed feature hashing of word and character n-grams, sublinear tf, L2-normalised.

    Deterministic across processes and machines (blake2b, never Python's salted `hash()`), so
    vectors stored by one process are comparable with queries from another. A text with no
    features (empty, punctuation only) gets a fixed unit vector, never zeros or NaN.
    """

    name = "hashing-ngram-384-v1"
    dimensions = EMBEDDING_DIMENSIONS

    def __init__(self) -> None:
        self._slots: dict[str, dict[str, Slots]] = {kind: {} for kind in _KINDS}

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_one(text) for text in texts]

    def embed_one(self, text: str) -> list[float]:
        """The vector of one text (synchronous: pure computation, well under 1 ms for 2 kB)."""
        vector = [0.0] * EMBEDDING_DIMENSIONS
        log = math.log
        for kind, counts in features(text).items():
            cache, compute = self._slots[kind], _KINDS[kind]
            if len(cache) > _CACHE_LIMIT:
                cache.clear()
            for feature, count in counts.items():
                slots = cache.get(feature)
                if slots is None:
                    slots = cache[feature] = compute(feature)
                tf = 1.0 if count == 1 else 1.0 + log(count)
                for bucket, weight in slots:
                    vector[bucket] += weight * tf
        norm = math.sqrt(math.fsum(x * x for x in vector))
        if norm == 0.0:
            return list(_EMPTY)
        return [x / norm for x in vector]


# --- an embeddings API ------------------------------------------------------------------------


class OpenAIEmbedder:
    """The OpenAI embeddings API (or a compatible server at `base_url`), asked for 384 dimensions.

    The model must honour `dimensions=384` (OpenAI's `text-embedding-3-small` and `-large` do);
    a server that answers with another size is refused with `EmbeddingError`, never truncated
    or padded: vectors of different models are not comparable anyway. No retries here: a
    failure raises `EmbeddingError` at once and the caller decides.
    """

    dimensions = EMBEDDING_DIMENSIONS
    batch = 512

    def __init__(
        self,
        api_key: str,
        model: str = "text-embedding-3-small",
        base_url: str | None = None,
        dimensions: int = EMBEDDING_DIMENSIONS,
        *,
        timeout: float = 30.0,
    ) -> None:
        if dimensions != EMBEDDING_DIMENSIONS:
            raise ValueError(
                f"the knowledge table holds {EMBEDDING_DIMENSIONS} dimensions, not {dimensions}"
            )
        from openai import AsyncOpenAI  # imported here: the hashing embedder never needs it

        self.model = model
        self.name = f"openai:{model}:{dimensions}"
        self._client: AsyncOpenAI = AsyncOpenAI(
            api_key=api_key or "unset", base_url=base_url, max_retries=0, timeout=timeout
        )

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch):
            vectors.extend(await self._request(texts[start : start + self.batch]))
        return vectors

    async def _request(self, texts: Sequence[str]) -> list[list[float]]:
        from openai import OpenAIError

        inputs = [text if text.strip() else " " for text in texts]  # the API refuses ""
        try:
            answer = await self._client.embeddings.create(
                model=self.model, input=inputs, dimensions=self.dimensions
            )
        except OpenAIError as exc:
            raise EmbeddingError(f"embedding with {self.model} failed: {exc}") from exc
        items = sorted(answer.data, key=lambda item: item.index)
        if [item.index for item in items] != list(range(len(inputs))):
            raise EmbeddingError(
                f"{self.model} answered {len(items)} embeddings for {len(inputs)} texts"
            )
        for item in items:
            if len(item.embedding) != self.dimensions:
                raise EmbeddingError(
                    f"{self.model} returned {len(item.embedding)} dimensions; the knowledge "
                    f"table holds {self.dimensions}: use a model that supports "
                    f"dimensions={self.dimensions} (e.g. text-embedding-3-small)"
                )
        return [[float(x) for x in item.embedding] for item in items]

    async def close(self) -> None:
        await self._client.close()


def build_embedder(
    kind: str = "hashing", *, api_key: str = "", model: str = "", base_url: str | None = None
) -> Embedder:
    """`hashing` (offline, the default) or `openai` (`model` defaults to text-embedding-3-small)."""
    if kind == "hashing":
        return HashingEmbedder()
    if kind == "openai":
        return OpenAIEmbedder(api_key, model or "text-embedding-3-small", base_url)
    raise ValueError(f"unknown embedder {kind!r}: use 'hashing' or 'openai'")

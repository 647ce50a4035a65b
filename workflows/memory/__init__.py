"""Incident memory: what was seen and fixed before, recalled by similarity (pgvector).

`embedding` turns text into 384 floats (offline hashing, or an embeddings API); `document`
says what a finished incident is remembered as; `recall` stores and finds them.

Usage::

    from workflows.memory import IncidentMemory, build_embedder

    memory = IncidentMemory(db, build_embedder())
    await memory.remember_incident(41)
    for seen in await memory.similar(42):
        ...
"""

from workflows.memory.embedding import (
    Embedder,
    EmbeddingError,
    HashingEmbedder,
    OpenAIEmbedder,
    build_embedder,
)
from workflows.memory.recall import IncidentMemory, Recollection

__all__ = [
    "Embedder",
    "EmbeddingError",
    "HashingEmbedder",
    "IncidentMemory",
    "OpenAIEmbedder",
    "Recollection",
    "build_embedder",
]

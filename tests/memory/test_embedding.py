"""Embeddings: the offline hashing embedder, and the OpenAI client against a local fake server."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import free_port
from tests.memory.openai_fake import fake_embeddings
from workflows.memory.embedding import (
    EmbeddingError,
    HashingEmbedder,
    OpenAIEmbedder,
    build_embedder,
    normalise,
)

TEXTS = [
    "DiskFull on db-1: /var/lib/postgresql at 97%",
    "磁盘空间不足 db-1",
    "db-2 上 Postgres 连接数过多 too many connections",
    "",
]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


@pytest.fixture
def hashing() -> HashingEmbedder:
    return HashingEmbedder()


def test_normalise_folds_width_case_digits_and_camel_case() -> None:
    assert normalise("ＤＢ－１２  is   DOWN\n") == "db-0 is down"
    assert normalise("DiskFull on db-7") == "disk full on db-0"
    assert normalise("PostgresTooManyConnections") == "postgres too many connections"
    assert normalise("磁盘空间不足，请处理：db-3") == "磁盘空间不足,请处理:db-0"


def test_vectors_are_the_same_in_another_process(hashing: HashingEmbedder) -> None:
    script = (
        "import json, sys\n"
        "from workflows.memory.embedding import HashingEmbedder\n"
        "texts = json.loads(sys.stdin.read())\n"
        "print(json.dumps([HashingEmbedder().embed_one(t) for t in texts]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's own hash() would differ
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(TEXTS),
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert json.loads(done.stdout) == [hashing.embed_one(text) for text in TEXTS]


async def test_vectors_have_unit_norm_and_the_table_size(hashing: HashingEmbedder) -> None:
    vectors = await hashing.embed([*TEXTS, "x" * 5000, "负载 " * 300])
    assert hashing.dimensions == 384
    assert hashing.name == "hashing-ngram-384-v1"
    for vector in vectors:
        assert len(vector) == 384
        assert norm(vector) == pytest.approx(1.0)


@pytest.mark.parametrize("text", ["", "   ", "!!! ,,, ？？", "the a of"])
def test_text_without_features_gets_a_finite_unit_vector(
    hashing: HashingEmbedder, text: str
) -> None:
    vector = hashing.embed_one(text)
    assert all(math.isfinite(x) for x in vector)
    assert norm(vector) == pytest.approx(1.0)
    assert math.isfinite(cosine(vector, hashing.embed_one("disk full")))


def test_chinese_near_duplicates_are_closer_than_unrelated_text(hashing: HashingEmbedder) -> None:
    a = hashing.embed_one("磁盘空间不足 db-1")
    b = hashing.embed_one("db-2 磁盘空间不足")
    c = hashing.embed_one("网站首页无法访问，返回 502")
    d = hashing.embed_one("数据库磁盘空间不足，请清理日志")
    assert cosine(a, b) > 0.9
    assert cosine(a, b) > cosine(a, d) > cosine(a, c)
    assert cosine(a, c) < 0.2


def test_english_near_duplicates_are_closer_than_unrelated_text(hashing: HashingEmbedder) -> None:
    a = hashing.embed_one("DiskFull on db-7")
    b = hashing.embed_one("Disk full on db-1: /var/lib/postgresql at 98%")
    typo = hashing.embed_one("disk fulll on db-3")
    c = hashing.embed_one("WebDown web-3 returns 502 Bad Gateway")
    assert cosine(a, b) > 0.5
    assert cosine(a, typo) > 0.4  # character trigrams survive the typo
    assert cosine(a, c) < 0.1
    same = [hashing.embed_one(t) for t in ("PostgresTooManyConnections db-5", "postgres too many")]
    assert cosine(same[0], hashing.embed_one("Too many connections to Postgres on db-2")) > 0.6
    assert cosine(same[0], same[1]) > cosine(same[0], c)


def test_mixed_chinese_and_english_use_both_parts(hashing: HashingEmbedder) -> None:
    mixed = hashing.embed_one("db-1 磁盘满了 disk full, 请清理 /var/log")
    chinese = hashing.embed_one("磁盘满 db-3")
    english = hashing.embed_one("disk full on db-9")
    unrelated = hashing.embed_one("证书过期 certificate expired on api")
    assert cosine(mixed, chinese) > 0.3
    assert cosine(mixed, english) > 0.3
    assert cosine(mixed, unrelated) < min(cosine(mixed, chinese), cosine(mixed, english)) / 2


def test_build_embedder_knows_its_kinds() -> None:
    assert isinstance(build_embedder(), HashingEmbedder)
    assert isinstance(build_embedder("openai", api_key="k", model="m"), OpenAIEmbedder)
    with pytest.raises(ValueError, match="unknown embedder"):
        build_embedder("word2vec")
    with pytest.raises(ValueError, match="384"):
        OpenAIEmbedder("k", "text-embedding-3-small", dimensions=1536)


async def test_openai_embedder_asks_for_384_dimensions_and_keeps_the_order() -> None:
    async with fake_embeddings() as server:
        embedder = build_embedder("openai", api_key="sk-test", model="emb-384", base_url=server.url)
        vectors = await embedder.embed(["disk full", "", "磁盘空间不足"])
        assert isinstance(embedder, OpenAIEmbedder)
        await embedder.close()
    [request] = server.requests
    assert request["model"] == "emb-384"
    assert request["dimensions"] == 384
    assert request["input"] == ["disk full", " ", "磁盘空间不足"]
    assert server.headers[0]["authorization"] == "Bearer sk-test"
    hashing = HashingEmbedder()
    assert vectors[0] == pytest.approx(hashing.embed_one("disk full"))
    assert vectors[2] == pytest.approx(hashing.embed_one("磁盘空间不足"))
    assert embedder.name == "openai:emb-384:384"


async def test_openai_embedder_refuses_another_size_and_reports_failures_once() -> None:
    async with fake_embeddings() as server:
        embedder = OpenAIEmbedder("sk-test", "text-embedding-ada-002", server.url)
        server.mode = "wrong-size"
        with pytest.raises(EmbeddingError, match="1536 dimensions"):
            await embedder.embed(["disk full"])
        server.mode = "error"
        with pytest.raises(EmbeddingError, match="failed"):
            await embedder.embed(["disk full"])
        assert len(server.requests) == 2  # no retries
        await embedder.close()
    gone = OpenAIEmbedder("sk-test", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout=5)
    with pytest.raises(EmbeddingError, match="failed"):
        await gone.embed(["disk full"])
    await gone.close()

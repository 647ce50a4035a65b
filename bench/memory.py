"""Incident memory at 100,000 rows: recall latency end to end (goal p99 < 20 ms).

1. Seeds `--rows` knowledge rows (incidents and notes, texts from templates over services,
   hosts and alert names, in Chinese and English, embedded with `HashingEmbedder`) by COPY in
   batches into a fresh embedded Postgres, builds the HNSW index once afterwards (as a bulk
   load should), then ANALYZE.
2. Prints the plan of the similarity query (the HNSW index scan under the LIMIT).
3. Measures `IncidentMemory.similar(text)` end to end (embedding + query) over `--queries`
   texts: p50/p99; the embedding alone; and recall@5 of the index against an exact scan.

Prints figures; asserts nothing.

    .venv/bin/python bench/memory.py [--rows 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
from figures import figure
from sqlalchemy import text

from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.knowledge import explain, nearest_among, similarity_query
from storage.migration import upgrade
from workflows.memory.embedding import HashingEmbedder
from workflows.memory.recall import KINDS, IncidentMemory

SERVICES = ["db", "web", "api", "cache", "queue", "auth", "billing", "search", "orders", "gateway"]
SERVICES += ["payments", "ingress", "kafka", "etcd", "backup", "mail", "cdn", "storage"]
EN = [
    ("DiskFull", "{host} disk /var at {n}% full", "logs filled /var", "clean_logs"),
    ("WebDown", "{svc} returns 502 Bad Gateway", "upstream pool empty", "restart_web"),
    ("HighLatency", "p99 latency {n} ms on {svc}", "slow queries after deploy", "rollback"),
    ("TooManyConnections", "{n} of 500 connections used on {host}", "connection leak", "restart"),
    ("CertExpiringSoon", "TLS certificate for {svc}.example.com expires in {n} days", "", ""),
    ("PodCrashLooping", "pod {svc}-{n} restarting", "OOMKilled: memory limit too low", "scale"),
    ("NodeNotReady", "kubelet on {host} stopped posting status", "kernel hung", "reboot"),
    ("HighCPU", "cpu {n}% on {host}", "runaway cron job", "kill_job"),
    ("BackupFailed", "nightly backup of {host} failed", "S3 upload 403", "rotate_keys"),
    ("QueueBacklog", "{n} messages waiting in {svc}", "consumer stuck", "restart_consumer"),
]
ZH = [
    ("磁盘空间不足", "{host} 磁盘 /data 使用率 {n}%", "日志写满磁盘", "清理日志"),
    ("网站无法访问", "{svc} 返回 502", "上游服务全部宕机", "重启服务"),
    ("接口延迟过高", "{svc} 接口 p99 延迟 {n} 毫秒", "发布后出现慢查询", "回滚发布"),
    ("数据库连接数过多", "{host} 连接数 {n}/500", "连接泄漏", "重启应用"),
    ("证书即将过期", "{svc} 的证书 {n} 天后过期", "", ""),
    ("容器反复重启", "{svc} 容器重启 {n} 次", "内存不足被杀", "调大内存"),
    ("消息积压", "{svc} 消息积压 {n} 条", "消费者卡死", "重启消费者"),
    ("内存使用率过高", "{host} 内存使用率 {n}%", "缓存没有过期时间", "清理缓存"),
]


REGIONS = ["bj", "sh", "gz", "sz", "hk", "sg", "fra", "iad", "east", "west", "north", "south"]
EN_WORDS = (
    "after deploy during peak traffic since midnight again flapping intermittent slow timeout "
    "retry spike drop burst leak stuck hung overload throttled evicted replica primary standby "
    "failover rollout canary config cron batch job nightly weekly shard partition index vacuum "
    "wal checkpoint lock deadlock swap inode fd socket dns tls handshake upstream downstream "
    "gc heap thread pool queue consumer producer topic lag offset raid nvme volume mount snapshot"
)
ZH_WORDS = "高峰 凌晨 发布 回滚 扩容 缩容 主库 从库 切换 超时 重试 抖动 泄漏 死锁 内核 网络 机房"
WORDS = [*EN_WORDS.split(), *ZH_WORDS.split()]


def sample_text(rng: random.Random) -> tuple[str, str]:
    """(title, embedded text) of one made-up incident, Chinese or English or both."""
    svc = rng.choice(SERVICES)
    letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(2))
    host = f"{svc}-{rng.choice(REGIONS)}-{letters}{rng.randint(1, 40)}"
    n = rng.randint(2, 999)
    name, alert, cause, fix = rng.choice(ZH if rng.random() < 0.4 else EN)
    title = f"{name} on {host}" if name.isascii() else f"{host} {name}"
    parts = [title, svc, host, alert.format(host=host, svc=svc, n=n)]
    if cause and rng.random() < 0.8:
        parts.append(cause)
    if fix and rng.random() < 0.7:
        parts.append(f"command template={fix} host={host}")
    parts.append(" ".join(rng.sample(WORDS, rng.randint(1, 4))))  # what made this one unusual
    if rng.random() < 0.15:  # a mixed-language operator remark
        parts.append(rng.choice(["已处理", "重启后恢复", "fixed by hand", "误报 false alarm"]))
    return title, "\n".join(parts)


def vector_text(vector: list[float]) -> str:
    return "[" + ",".join(["0" if x == 0.0 else repr(x) for x in vector]) + "]"


async def seed(dsn: str, rows: int, batch: int) -> None:
    embedder = HashingEmbedder()
    rng = random.Random(2024)
    started = time.perf_counter()
    embed_s = 0.0
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("DROP INDEX ix_knowledge_embedding_hnsw")
        for start in range(0, rows, batch):
            t0 = time.perf_counter()
            records = []
            for n in range(start, min(rows, start + batch)):
                title, body = sample_text(rng)
                kind = "note" if n % 10 == 0 else "incident"
                meta = {"incident_id": n // 10 * 10 if kind == "note" else n, "title": title}
                if kind == "incident":
                    meta |= {"fix": None, "outcome": rng.choice(["resolved", "verified"])}
                vector = vector_text(embedder.embed_one(body))
                records.append((kind, str(n), title, body, json.dumps(meta), vector))
            embed_s += time.perf_counter() - t0
            async with (
                conn.cursor() as cursor,
                cursor.copy(
                    "COPY knowledge (kind, source_id, title, content, metadata, embedding_model, "
                    "embedding) FROM STDIN"
                ) as copy,
            ):
                for kind, source, title, body, meta_json, vector in records:
                    await copy.write_row(
                        (kind, source, title, body, meta_json, embedder.name, vector)
                    )
            done = min(rows, start + batch)
            print(
                f"  seeded {done:>7}/{rows} rows, {time.perf_counter() - started:5.1f} s "
                f"(embedding and formatting {embed_s:.1f} s)",
                flush=True,
            )
        t0 = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        await conn.execute(
            "CREATE INDEX ix_knowledge_embedding_hnsw ON knowledge "
            "USING hnsw (embedding vector_cosine_ops)"
        )
        built = time.perf_counter() - t0
        await conn.execute("ANALYZE knowledge")
        buffers = await (await conn.execute("SHOW shared_buffers")).fetchone()
        distinct = await (
            await conn.execute("SELECT count(DISTINCT embedding) FROM knowledge")
        ).fetchone()
        size = await (
            await conn.execute(
                "SELECT pg_size_pretty(pg_relation_size('ix_knowledge_embedding_hnsw'))"
            )
        ).fetchone()
    print(
        f"  HNSW index built in {built:.1f} s ({size[0] if size else '?'}), ANALYZE done; "
        f"{distinct[0] if distinct else '?'} distinct vectors; shared_buffers "
        f"{buffers[0] if buffers else '?'}"
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(db: Database, queries: int, rows: int) -> None:
    embedder = HashingEmbedder()
    memory = IncidentMemory(db, embedder)
    rng = random.Random(7)
    texts = [sample_text(rng)[1] for _ in range(queries)]
    for query in texts[:20]:  # warm up: pool connections, statement cache, page cache
        await memory.similar(query)

    async with db.session() as session:
        await session.execute(text("SET LOCAL hnsw.iterative_scan = strict_order"))
        statement = similarity_query(embedder.embed_one(texts[0]), kinds=KINDS, limit=5, where=[])
        plan = await explain(session, statement)
    print("2. plan of the similarity query (top nodes):")
    for line in plan:
        if not line.strip().startswith("Order By"):  # the vector literal: 384 numbers
            print(f"  {line}")

    total, embed, counts = [], [], []
    for query in texts:
        t0 = time.perf_counter()
        found = await memory.similar(query, limit=5)
        total.append((time.perf_counter() - t0) * 1000)
        counts.append(len(found))
        t0 = time.perf_counter()
        embedder.embed_one(query)
        embed.append((time.perf_counter() - t0) * 1000)
    excluding = []
    for n, query in enumerate(texts):
        t0 = time.perf_counter()
        await memory.similar(query, limit=5, exclude_incident=n * 10)
        excluding.append((time.perf_counter() - t0) * 1000)
    mixed = "磁盘空间不足，日志写满 /data；" * 40 + "disk full on db-3, logs filled /var. " * 30
    long = mixed.encode()[:2048].decode(errors="ignore")  # 2 kB of UTF-8
    long_ms = []
    for _ in range(200):
        t0 = time.perf_counter()
        embedder.embed_one(long)
        long_ms.append((time.perf_counter() - t0) * 1000)
    print(f"3. similar(text) end to end over {queries} queries (embedding + HNSW query, limit 5):")
    print(
        f"  p50 {pct(total, 0.5):.2f} ms, p99 {pct(total, 0.99):.2f} ms, max {max(total):.2f} ms "
        f"(goal p99 < 20 ms); {statistics.mean(counts):.1f} results on average"
    )
    p99 = pct(total, 0.99)
    figure(6, f"similar-incident retrieval p99 at {rows} rows", p99, "ms", "< 20", p99 < 20)
    print(
        f"  with exclude_incident (a metadata filter on the index scan): "
        f"p50 {pct(excluding, 0.5):.2f} ms, p99 {pct(excluding, 0.99):.2f} ms"
    )
    print(
        f"  embedding alone: p50 {pct(embed, 0.5) * 1000:.0f} µs, p99 {pct(embed, 0.99) * 1000:.0f}"
        f" µs (query texts ~{statistics.mean(len(t) for t in texts):.0f} chars); "
        f"a 2 kB zh/en text ({len(long)} chars): p50 {pct(long_ms, 0.5) * 1000:.0f} µs"
    )

    sample = texts[:50]
    hits = 0
    async with db.session() as session:
        await session.execute(text("SET LOCAL enable_indexscan = off"))
        fifth = []  # the exact 5th-smallest distance of each query
        for query in sample:
            statement = similarity_query(embedder.embed_one(query), kinds=KINDS, limit=5)
            fifth.append(max(row[1] for row in (await session.execute(statement)).all()))
    for query, bound in zip(sample, fifth, strict=True):
        async with db.session() as session:
            nearest = await nearest_among(
                session, embedder.embed_one(query), kinds=KINDS, limit=5, ef_search=64
            )
        hits += sum(distance <= bound + 1e-6 for _, distance in nearest)
    print(
        f"4. recall@5 of the HNSW search (ef_search 64) against an exact scan over "
        f"{len(sample)} queries: {hits / (5 * len(sample)):.1%} (a result counts when it is "
        "as close as the exact 5th: templated texts tie)"
    )


async def run(rows: int, queries: int, batch: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-memory-"))
    server = EmbeddedPostgres(home, fsync=False)
    await asyncio.to_thread(server.start)
    try:
        db = await Database.open(server.dsn, pool_size=2)
        await upgrade(db)
        print(f"1. seeding {rows} knowledge rows (COPY in batches of {batch})")
        await seed(server.dsn, rows, batch)
        await measure(db, queries, rows)
        await db.close()
    finally:
        await asyncio.to_thread(server.release)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.queries, args.batch))


if __name__ == "__main__":
    main()

# larkops: slim, non-root image; `larkops run` is the entrypoint.
# Set DATABASE_URL and REDIS_URL for production; without DATABASE_URL the embedded Postgres
# keeps its data in $LARKOPS_HOME (mount a volume there).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY bot ./bot
COPY workflows ./workflows
COPY plugins ./plugins
COPY cards ./cards
COPY storage ./storage
COPY migrations ./migrations
RUN python -m venv /opt/larkops \
    && /opt/larkops/bin/pip install --no-compile . \
    && /opt/larkops/bin/python -m compileall -q /opt/larkops/lib

FROM python:3.11-slim
RUN groupadd --system --gid 10001 larkops \
    && useradd --system --uid 10001 --gid larkops --home-dir /var/lib/larkops --create-home \
       --shell /usr/sbin/nologin larkops
COPY --from=build /opt/larkops /opt/larkops
ENV PATH=/opt/larkops/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LARKOPS_HOME=/var/lib/larkops \
    LARKOPS_HTTP_HOST=0.0.0.0 \
    LARKOPS_HTTP_PORT=8080 \
    LARKOPS_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/larkops
VOLUME ["/var/lib/larkops"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LARKOPS_HTTP_PORT', '8080') + '/healthz', timeout=2)"]
ENTRYPOINT ["larkops"]
CMD ["run"]

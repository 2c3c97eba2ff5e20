# tipsplit service image: slim, non-root, configured only through the environment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . \
    && groupadd --system --gid 10001 tipsplit \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin tipsplit \
    && mkdir /data \
    && chown tipsplit:tipsplit /data

# The journal (writes made while PostgreSQL is down) and the legacy file store live on this volume.
ENV TIPSPLIT_DATA_DIR=/data \
    TIP_STORE_FILE=/data/.tip-store.json \
    PORT=8000 \
    LOG_FORMAT=json
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('PORT', '8000'), timeout=3)"]

CMD ["tipsplit", "serve", "--host", "0.0.0.0"]

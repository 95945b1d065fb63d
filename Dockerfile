# signoff: one image for `signoff serve` (the Deployment, the compose service) and
# `signoff db upgrade` (the migration Job).
#
#   docker build -t signoff:0.1.0 .
#   docker run -p 8000:8000 -e SIGNOFF_DATABASE_URL=postgresql+asyncpg://... signoff:0.1.0
#
# tests/resilience/test_deploy.py does what this file does (build the wheel, install it with
# the EXTRAS below into a fresh venv, start `signoff serve` outside the source tree) and
# reads EXTRAS from here, so the two cannot drift apart.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the wheel, from the source tree -------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
RUN pip wheel --no-deps -w /wheels .

# --- runtime: the wheel and its extras in a venv, run as a non-root user -----------------
FROM ${PYTHON_IMAGE} AS runtime
ARG EXTRAS=postgres,slack,discord,openai
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/signoff/bin:$PATH \
    SIGNOFF_HOST=0.0.0.0 \
    SIGNOFF_PORT=8000

# git: the `git` release target runs it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /wheels /wheels
RUN python -m venv /opt/signoff \
    && /opt/signoff/bin/pip install /wheels/signoff-*.whl"[${EXTRAS}]" \
    && rm -rf /wheels

# The working directory holds the default SQLite database (./signoff.db) and an optional
# ./signoff.yaml; mount a volume here, or point SIGNOFF_DATABASE_URL at PostgreSQL.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/signoff --create-home signoff
WORKDIR /var/lib/signoff
USER 10001:10001

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('SIGNOFF_PORT', '8000')}/healthz\", timeout=4)"]
# `serve` applies pending migrations before it listens; SIGTERM drains and exits.
CMD ["signoff", "serve"]

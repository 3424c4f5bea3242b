# One image for every Churnwatch service (ingest, scorer, alerter) and the one-shot migrate job;
# docker-compose.yml picks the role with `command:`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Fixed uid/gid so volume permissions and Kubernetes runAsNonRoot checks are predictable.
RUN groupadd --system --gid 10001 churnwatch \
 && useradd --system --uid 10001 --gid churnwatch --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin churnwatch

# The build context is filtered by .dockerignore (no .git, tests, caches, local venvs). A regular
# (non-editable) install puts everything the services need - including the Alembic migrations, which
# ship inside the packages - into site-packages, so the sources are removed afterwards.
COPY . /tmp/src
RUN pip install /tmp/src && rm -rf /tmp/src

WORKDIR /app

USER 10001:10001
EXPOSE 8000 8001 8002
CMD ["churnwatch", "--help"]

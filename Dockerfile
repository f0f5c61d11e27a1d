# rehab-bot: one container per clinic. Data (SQLite) lives in the /data volume.
#   docker build -t rehab-bot .
#   docker run -d --name rehab-bot -v rehab-data:/data -e REHAB_BOT_TELEGRAM_TOKEN=... rehab-bot
#   docker run --rm -v rehab-data:/data rehab-bot staff add --telegram-id N --role admin --name NAME
# The image's command is `rehab-bot`; its default argument is `run`, so any other
# subcommand can follow the image name. PostgreSQL: see compose.yaml.
# Configuration: REHAB_BOT_* variables, or mount a file at /data/config.toml.
# Dependencies come from requirements.lock (pinned, with hashes; see README).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# /data holds health data: only the bot's user may enter it (a new named volume
# takes this mode). rehab-bot itself runs with umask 077, so the database,
# its -wal/-shm, backups, exports and QR codes are 0600 (see README).
RUN groupadd --gid 10001 rehab \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin rehab \
    && install -d -m 0700 -o 10001 -g 10001 /data

WORKDIR /src
COPY requirements.lock pyproject.toml README.md LICENSE ./
COPY rehab_bot ./rehab_bot
RUN pip install --require-hashes -r requirements.lock \
    && pip install --no-deps . && rm -rf /src

USER 10001
WORKDIR /data
VOLUME ["/data"]

# SQLite in the volume by default; set REHAB_BOT_DATABASE_URL for PostgreSQL.
ENV REHAB_BOT_DATABASE_URL=sqlite+aiosqlite:////data/rehab-bot.db \
    REHAB_BOT_HTTP_LISTEN=0.0.0.0:8080
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["rehab-bot"]
CMD ["run"]

# kpi-exporter container image: slim Python, non-root, specs in /etc/kpi-exporter,
# cursor state in /var/lib/kpi-exporter (mount a volume there).
#   docker build -t kpi-exporter .
#   docker run -p 9091:9091 -v $PWD/config:/etc/kpi-exporter:ro \
#     -v kpi-state:/var/lib/kpi-exporter -e APP_DATABASE_URL=... kpi-exporter
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    KPI_STATE_DIR=/var/lib/kpi-exporter

WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip install . \
 && useradd --system --uid 10001 --home-dir /var/lib/kpi-exporter --shell /usr/sbin/nologin kpi \
 && mkdir -p /etc/kpi-exporter /var/lib/kpi-exporter \
 && chown kpi:kpi /var/lib/kpi-exporter \
 && rm -rf /src

WORKDIR /var/lib/kpi-exporter
USER 10001:10001
VOLUME ["/var/lib/kpi-exporter"]
EXPOSE 9091

# /health answers 200 while the process runs (plain HTTP; with --web.config.file TLS use
# https and --health-no-auth, or drop the check and rely on the orchestrator's probe).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; p=os.environ.get('METRICS_PORT','9091'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{p}/health', timeout=4).status == 200 else 1)"]

# SIGTERM (docker stop) lets polls finish for --grace seconds, cancels the rest, exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["kpi-exporter", "run", "-c", "/etc/kpi-exporter"]
CMD ["--log-format", "json"]

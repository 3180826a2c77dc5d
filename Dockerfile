# kafka-chaos-proxy image: the proxy installed from this repository.
# Default command runs it in front of the `kafka` service of docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY codec ./codec
COPY faults ./faults
COPY proxy ./proxy
COPY lab ./lab
COPY scenarios ./scenarios
RUN pip install . && useradd --system --uid 10001 kcp

USER kcp
EXPOSE 9192 9190
# /healthz needs no token; everything else on the admin port does.
HEALTHCHECK --interval=5s --timeout=5s --retries=12 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9190/healthz', timeout=3)"]
ENTRYPOINT ["kafka-chaos-proxy"]
# The admin API listens beyond loopback here, so the proxy refuses to start without a token:
# pass one as KCP_ADMIN_TOKEN (e.g. `docker run -e KCP_ADMIN_TOKEN=...`).
CMD ["run", "--bootstrap-server", "kafka:9092", "--listen-host", "0.0.0.0", "--advertised-host", "proxy", "--port", "9192", "--admin-host", "0.0.0.0", "--admin-port", "9190", "--admin-allowed-host", "proxy"]

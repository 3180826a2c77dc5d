# kafka-chaos-proxy image: the wheel of this checkout, installed on python:3.11-slim.
#
#   docker build -t kafka-chaos-proxy .
#   docker run --rm -e KCP_ADMIN_TOKEN=s3cret -e KCP_BOOTSTRAP_SERVER=kafka:9092 \
#     -e KCP_ADVERTISED_HOST=127.0.0.1 -p 9192:9192 -p 9193:9193 -p 9190:9190 kafka-chaos-proxy
#
# Every setting is a KCP_<FLAG_NAME> variable (flags after the image name win over them); the
# defaults below make it listen beyond loopback, which a container needs. What each one means,
# and how clients outside the container reach the brokers behind it: docs/container.md.
# tests/integration/container/test_image.py runs this file's command and environment (outside
# Docker) in front of a real broker; tests/unit/test_compose.py checks it against the CLI.

# --- build: the wheel, and a virtual environment holding it and its dependencies ---------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# kafka_chaos_proxy/{codec,faults,proxy,lab} are links to the top-level folders, and lab/catalog
# to scenarios/: all of them are copied, and the wheel holds the files.
COPY pyproject.toml README.md ./
COPY kafka_chaos_proxy ./kafka_chaos_proxy
COPY codec ./codec
COPY faults ./faults
COPY proxy ./proxy
COPY lab ./lab
COPY scenarios ./scenarios
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
 && python -m venv /opt/kcp \
 && /opt/kcp/bin/pip install --no-cache-dir /dist/kafka_chaos_proxy-*.whl

# --- runtime: the virtual environment and nothing else of the build ----------------------------
FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/kcp kcp
COPY --from=build /opt/kcp /opt/kcp
# KCP_BOOTSTRAP_SERVER: the brokers (a compose service or network alias named kafka by default).
# KCP_LISTEN_HOST / KCP_ADMIN_HOST 0.0.0.0: reachable from outside the container; the admin API
# then refuses to start without a token: pass KCP_ADMIN_TOKEN (or --admin-token-file) at run time.
# KCP_PORT: bootstrap listener; KCP_PORT_BASE: broker N discovered listens on base+N (9193 for a
# single broker). Clients are told KCP_ADVERTISED_HOST (default: the container's host name) and
# the listener's own port, so publish broker ports 1:1 (-p 9193:9193): docs/container.md.
ENV PATH=/opt/kcp/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KCP_BOOTSTRAP_SERVER=kafka:9092 \
    KCP_LISTEN_HOST=0.0.0.0 \
    KCP_PORT=9192 \
    KCP_PORT_BASE=9193 \
    KCP_ADMIN_HOST=0.0.0.0 \
    KCP_ADMIN_PORT=9190
USER 10001
WORKDIR /home/kcp
EXPOSE 9190 9192 9193
# /healthz is the one admin route that needs no token; python because slim has no curl.
HEALTHCHECK --interval=5s --timeout=5s --start-period=5s --retries=12 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('KCP_ADMIN_PORT', '9190') + '/healthz', timeout=3)"]
ENTRYPOINT ["kafka-chaos-proxy"]
CMD ["run"]

# sso-proxy container image.
#
#   docker build -t sso-proxy:0.1.0 .
#   docker run --rm -p 4180:4180 \
#     -v "$PWD/deploy/docker/config.yaml:/etc/sso-proxy/config.yaml:ro" \
#     -v "$PWD/signing-2026.pem:/etc/sso-proxy/keys/signing-2026.pem:ro" \
#     -e HEALTH_ID_CLIENT_ID -e HEALTH_ID_CLIENT_SECRET \
#     -e PROVIDER_ID_CLIENT_ID -e PROVIDER_ID_SECRET_KEY \
#     -e SSO_COOKIE_SECRET -e REDIS_URL \
#     sso-proxy:0.1.0
#
# Config: a YAML file mounted at /etc/sso-proxy/config.yaml (read-only); nothing is baked in.
# Secrets: from the environment, referenced in the config as ${NAME}. The names the example
# configs (deploy/docker/config.yaml, deploy/k8s/configmap.yaml) use:
#   HEALTH_ID_CLIENT_ID, HEALTH_ID_CLIENT_SECRET   MOPH Health ID OAuth client
#   PROVIDER_ID_CLIENT_ID, PROVIDER_ID_SECRET_KEY  MOPH Provider ID client
#   SSO_COOKIE_SECRET                              >= 32 bytes: openssl rand -base64 48
#   REDIS_URL / REDIS_PASSWORD                     the session store
# For secrets mounted as files, NAME_FILE=/path makes the file's content the value of NAME
# (e.g. SSO_COOKIE_SECRET_FILE=/run/secrets/cookie_secret).
# Signing keys (signing.key_files) are files: mount them read-only, owned by UID 10001, mode 0600
# (sso-proxy keys generate --out signing-2026.pem).
#
# The process runs as UID/GID 10001 and writes nothing to its filesystem, so it runs with a
# read-only root filesystem. SIGTERM drains in-flight requests (up to 20 s) and exits 0: give the
# container at least 25 s to stop (docker stop -t 30; Kubernetes terminationGracePeriodSeconds).

# Base image pinned to an exact Python patch release on Debian 13 "trixie" (current stable).
# A tag can still be re-pointed by its publisher; where the build can reach the registry, pin the
# digest as well: FROM python:3.12.12-slim-trixie@sha256:<digest of `docker buildx imagetools
# inspect python:3.12.12-slim-trixie`>. (The digest could not be resolved where this was written.)
ARG PYTHON_IMAGE=python:3.12.12-slim-trixie

# ---- build: the sso-proxy wheel, installed with its pinned dependencies into a venv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sso_proxy ./sso_proxy
COPY deploy/docker/constraints.txt ./constraints.txt
# The venv gets no pip of its own (the image's pip installs into it): only what runs.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/sso-proxy \
 && pip --python /opt/sso-proxy/bin/python install --no-cache-dir \
      --constraint constraints.txt /wheels/sso_proxy-*.whl

# ---- runtime: the venv only; no compiler, no pip cache, no source tree ----
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="sso-proxy" \
      org.opencontainers.image.description="Identity-aware reverse proxy / SSO sidecar for MOPH Health ID + Provider ID" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 sso-proxy \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin sso-proxy
COPY --from=build /opt/sso-proxy /opt/sso-proxy
# SSO_LISTEN: the example configs bind ${SSO_LISTEN}; inside a container that is all interfaces.
ENV PATH="/opt/sso-proxy/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SSO_LISTEN=0.0.0.0:4180 \
    SSO_HEALTHCHECK_URL=http://127.0.0.1:4180/healthz
USER 10001:10001
WORKDIR /opt/sso-proxy
# 4180: the proxy (listen). 9180: Prometheus /metrics (metrics_listen), never to be published.
EXPOSE 4180 9180
# slim has no curl: ask /healthz with the standard library (any non-2xx or no answer fails).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['SSO_HEALTHCHECK_URL'], timeout=4)"]
ENTRYPOINT ["sso-proxy"]
CMD ["serve", "--config", "/etc/sso-proxy/config.yaml"]

# The cloud relay server: no ROS needed. Built from the repository root:
#   docker build -f docker/relay.Dockerfile -t havatar/relay .
FROM python:3.11-slim
WORKDIR /app
COPY scripts/requirements-relay.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
COPY src/havatar_relay/havatar_relay /app/havatar_relay
# the ROS-free shared modules (token checks) the relay server imports
COPY src/havatar_common/havatar_common /app/havatar_common
RUN useradd --system --uid 10001 relay
USER relay
EXPOSE 8090
ENTRYPOINT ["python", "-m", "havatar_relay.server.app"]

# The sample system's image: one image, five services (docker-compose.yml picks the
# module and port of each). Built from the repository root: docker compose up --build
FROM python:3.11.15-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# .dockerignore admits only the package sources. They are installed, not run from the
# source tree, so the container runs exactly what a pip user would get.
COPY . /tmp/o11ykit-src
RUN cd /tmp/o11ykit-src \
    && pip install ".[workshop]" "psycopg[binary]>=3.2,<4" \
    && cd / \
    && rm -rf /tmp/o11ykit-src

RUN useradd --create-home --uid 10001 --user-group o11ykit
USER o11ykit
WORKDIR /home/o11ykit

EXPOSE 8080 8081 8082 8083 8085
CMD ["uvicorn", "sample_app.services.gateway.app:app", "--host", "0.0.0.0", "--port", "8080"]

# classmood for Docker users: the same image as `make image` (deploy/build_image.sh), from a registry
# base, with the same hash-pinned dependencies (deploy/requirements.lock: CPython 3.11, linux/amd64).
# Not built on the machines this project is developed on (no registry, and RUN needs setrlimit there);
# tests/test_container.py checks that it stays in step with deploy/build_image.sh. Build and run:
#   docker build -t classmood .
#   HASH=$(docker run --rm -i classmood classmood app --hash-password)   # type the password, Enter
#   docker run -p 8501:8501 -p 8502:8502 -v classmood-data:/data -e CLASSMOOD_PASSWORD_HASH="$HASH" classmood
# 8501 is the app; 8502 the student-side hub the app starts when a class opens (students' page and sockets).
# It listens on 0.0.0.0 inside the container, so a password is required: CLASSMOOD_PASSWORD_HASH
# (a salted scrypt hash from `classmood app --hash-password`) or CLASSMOOD_PASSWORD (plain text,
# hashed in memory at start). Sessions go to /data/sessions.db, or to DATABASE_URL (any SQLAlchemy URL;
# psycopg is inside for PostgreSQL). Browsers only give the webcam to HTTPS pages (or localhost): put a
# TLS reverse proxy in front, and for WebRTC across networks (NAT) a TURN server. See the README's "Deploy".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CLASSMOOD_DB=/data/sessions.db

# The runtime (app and postgres extras, no PyTorch), every wheel checked against its pinned sha256.
COPY deploy/requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --only-binary=:all: -r /tmp/requirements.lock && rm /tmp/requirements.lock

# classmood itself, with its models and onnxruntime-web (from the npm registry, sha512 checked) inside.
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY classmood ./classmood
RUN python -m classmood.classroom.vendor \
    && pip install --no-deps . \
    && cd / && rm -rf /src \
    && useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin classmood \
    && mkdir -p /data && chown 1000:1000 /data

USER 1000:1000
WORKDIR /home/classmood
VOLUME /data
EXPOSE 8501 8502
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["classmood", "app", "--host", "0.0.0.0", "--port", "8501", "--class-port", "8502"]

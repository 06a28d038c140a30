# The classroom web app in a container. Build and run:
#   docker build -t classmood .
#   HASH=$(docker run --rm -i classmood classmood app --hash-password)   # type the password, Enter
#   docker run -p 8501:8501 -v classmood-data:/data -e CLASSMOOD_PASSWORD_HASH="$HASH" classmood
# It listens on 0.0.0.0 inside the container, so a password is required: CLASSMOOD_PASSWORD_HASH
# (a salted scrypt hash from `classmood app --hash-password`) or CLASSMOOD_PASSWORD (plain text,
# hashed in memory at start). Sessions go to /data/sessions.db, or to DATABASE_URL (any SQLAlchemy URL).
# Browsers only give the webcam to HTTPS pages (or localhost): put a TLS reverse proxy in front, and
# for WebRTC across networks (NAT) a TURN server. See the README's "Deployment" section.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CLASSMOOD_DB=/data/sessions.db

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY classmood ./classmood
RUN pip install '.[app]' \
    && useradd --create-home --uid 1000 classmood \
    && mkdir -p /data && chown classmood /data

USER classmood
VOLUME /data
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["classmood", "app", "--host", "0.0.0.0", "--port", "8501"]

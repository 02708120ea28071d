# The messenger web app: Voila serving notebooks/messenger.ipynb on port 8866.
# Built by buildspec.yml (BASE_IMAGE from the ECR Public mirror of the same image) and run
# on ECS Fargate by infra/web.yaml. Configuration comes from the task's environment
# (MESSENGER_REQUEST_QUEUE_URL, MESSENGER_RESPONSE_QUEUE_URL, MESSENGER_BUCKET, AWS_REGION)
# and credentials from the task role; the image holds no .env and no secret.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 messenger \
 && useradd --system --uid 10001 --gid messenger --create-home --home-dir /home/messenger \
      --shell /usr/sbin/nologin messenger

WORKDIR /app

# The package first (its layer changes less often than the notebook).
COPY pyproject.toml README.md ./
COPY messenger_widgets ./messenger_widgets
RUN pip install --no-compile . \
 && rm -rf build messenger_widgets.egg-info

# The app: the notebook Voila serves and its settings (XSRF off for the shutdown beacon,
# kernel culling). Owned by root: the app user can read, not change, them.
COPY voila.json ./
COPY notebooks ./notebooks

USER messenger
EXPOSE 8866

# ECS uses the load balancer's health check; this one helps `docker run` and local compose.
# A static file: checking "/" would start a kernel every time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8866/voila/static/voila.js', timeout=4)"]

CMD ["voila", "notebooks/messenger.ipynb", "--no-browser", "--Voila.ip=0.0.0.0", "--port=8866", "--show_tracebacks=False"]

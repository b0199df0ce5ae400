# CPU image that runs the two entry points: `make demo` (the default command) and `make test`.
#   docker build -t intradayjules .
#   docker run --rm intradayjules                 # make demo: the main job on the synthetic market
#   docker run --rm intradayjules make test       # lint-imports, mypy, the whole test suite
# Installs with constraints.txt (the versions CI tested) and torch 2.13.0 from PyTorch's CPU wheel index
# (the default Linux torch wheel pulls GBs of CUDA libraries). docs/packaging.md has the details.
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_EXTRA_INDEX_URL=${TORCH_INDEX_URL} \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    RAY_USAGE_STATS_ENABLED=0 \
    PYTHONUNBUFFERED=1

# make runs the entry points; git lets runs record their commit (lineage). Not version-pinned: the
# base image's Debian release fixes them, and pinned Debian versions disappear from its mirrors.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make git \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 ij
WORKDIR /home/ij/intradayjules
COPY --chown=ij:ij . .
USER 10001

# the dev install (demo + tests) at build time, so both commands run without a network
RUN make .venv/.dev-installed

CMD ["make", "demo"]

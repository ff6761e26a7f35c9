#!/usr/bin/env bash
# Build the bids_app container image and smoke-test it offline (`make container-test`).
#
# Steps: find (or install) a container engine -> base image -> offline wheelhouse -> build ->
# `--version`/`--help`/`--dry-run`, and check the image holds no simulator -> synthetic small
# study (made on the host by `python -m petsim`: the simulator is not in the image) ->
# participant + group runs with
# `--network none --read-only --tmpfs /tmp -u UID:GID` and a read-only input mount -> check the
# outputs and that the input tree is byte-for-byte unchanged.
#
# Exit 0 on success, 1 on failure. Prints "SKIP: <why>" and exits 0 only when no container engine
# is available and none can be installed.
#
# Environment (all optional):
#   CONTAINER_ENGINE          podman | docker (default: podman if present, else a working docker,
#                             else `apt-get install podman runc mmdebstrap` when root/sudo allows)
#   BIDS_APP_IMAGE            tag to build/test (default localhost/bids_app:test)
#   BIDS_APP_BASE             local | official (default: local when mmdebstrap is available, i.e. a
#                             Debian bookworm minbase made with mmdebstrap and imported; official =
#                             the digest-pinned python:3.11-slim-bookworm of the Dockerfile)
#   BASE_IMAGE                use this base image instead (overrides BIDS_APP_BASE)
#   PIP_INSTALL_MODE          wheelhouse (default; wheels fetched on the host, installed offline in the
#                             build) | online (pip downloads inside the build)
#   PYTHON                    host Python 3.11 with pip, used for the wheelhouse, the version and
#                             the synthetic study (needs petsim/requirements.txt installed;
#                             default: .venv/bin/python when present, else python3)
#   BIDS_APP_SKIP_BUILD=1     test an image that already exists (e.g. built by CI)
#   BIDS_APP_CONTAINER_SMOKE  full (default) | quick (version, help and dry run only)
#   BIDS_APP_CONTAINER_CACHE  cache folder (default .cache/container in the repo; keep it gitignored)
#   NPROCS                    --nprocs of the participant run (default 2)
#   KEEP_WORK=1               keep the temporary study/output folder for inspection
#
# Logs: $BIDS_APP_CONTAINER_CACHE/{build.log,wheelhouse.log,logs/<step>.log}.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${BIDS_APP_CONTAINER_CACHE:-$ROOT/.cache/container}"
IMAGE="${BIDS_APP_IMAGE:-localhost/bids_app:test}"
LOCAL_BASE_TAG="localhost/bids_app-base:bookworm"
ENGINE="${CONTAINER_ENGINE:-}"
PIP_INSTALL_MODE="${PIP_INSTALL_MODE:-wheelhouse}"
if [ -z "${PYTHON:-}" ]; then
    # The project's venv (make setup) knows the app's version; else the system Python 3.
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
SMOKE="${BIDS_APP_CONTAINER_SMOKE:-full}"
NPROCS="${NPROCS:-2}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BUILD_REQUIREMENTS=("hatchling>=1.20" "hatch-vcs>=0.4")

SUMMARY=()
log() { printf '[container-test] %s\n' "$*" >&2; }
note() { SUMMARY+=("$*"); log "$*"; }
die() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}
skip() {
    printf 'SKIP: %s\n' "$*"
    exit 0
}
engine() { "$ENGINE" "$@"; }
image_exists() { engine image inspect "$1" >/dev/null 2>&1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo "$@"
    else
        return 1
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    log "installing $* with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ---- container engine -------------------------------------------------------------------------
choose_engine() {
    if [ -n "$ENGINE" ]; then
        command -v "$ENGINE" >/dev/null 2>&1 || die "CONTAINER_ENGINE=$ENGINE is not installed"
    elif command -v podman >/dev/null 2>&1; then
        ENGINE=podman
    elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        ENGINE=docker
    elif apt_install podman runc mmdebstrap && command -v podman >/dev/null 2>&1; then
        ENGINE=podman
    else
        skip "no container engine: podman is not installed, docker has no reachable daemon, and" \
            "podman cannot be installed here (needs apt-get and root or passwordless sudo)"
    fi
    if [ "$ENGINE" = podman ] && [ -z "${CONTAINERS_CONF:-}" ] && command -v runc >/dev/null 2>&1; then
        # runc + explicit ulimits: crun fails in some sandboxes. Only for this script's podman calls.
        export CONTAINERS_CONF="$ROOT/scripts/containers.conf"
    fi
    if [ "$ENGINE" = docker ]; then
        export DOCKER_BUILDKIT=1 # builds only the stages the chosen PIP_INSTALL_MODE needs
    fi
    engine info >/dev/null 2>&1 || die "'$ENGINE info' fails: the container engine is installed but not usable"
    note "engine: $ENGINE ($(engine --version 2>/dev/null | head -n 1))"
}

# ---- base image -------------------------------------------------------------------------------
make_local_base() {
    local tar="$CACHE_DIR/base/bookworm-minbase.tar"
    if ! image_exists "$LOCAL_BASE_TAG"; then
        if [ ! -s "$tar" ]; then
            command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap ||
                die "mmdebstrap is needed for BIDS_APP_BASE=local (or use BIDS_APP_BASE=official)"
            mkdir -p "$(dirname "$tar")"
            log "creating a Debian bookworm minbase with mmdebstrap (cached in $tar)"
            local t0=$SECONDS
            # The mirrors are given explicitly: without them mmdebstrap reads sources from stdin.
            mmdebstrap --variant=minbase --format=tar --include=python3,python3-venv,ca-certificates \
                --aptopt='Acquire::Retries "3"' bookworm "$tar.partial" \
                "deb $DEBIAN_MIRROR bookworm main" \
                "deb $DEBIAN_MIRROR bookworm-updates main" \
                "deb ${DEBIAN_MIRROR%/debian}/debian-security bookworm-security main" \
                </dev/null >"$CACHE_DIR/base/mmdebstrap.log" 2>&1 ||
                die "mmdebstrap failed; see $CACHE_DIR/base/mmdebstrap.log"
            mv "$tar.partial" "$tar"
            note "base rootfs created in $((SECONDS - t0)) s"
        fi
        log "importing $tar as $LOCAL_BASE_TAG"
        engine import --change 'CMD ["/bin/bash"]' "$tar" "$LOCAL_BASE_TAG" \
            >"$CACHE_DIR/base/import.log" 2>&1 ||
            die "importing the base rootfs failed; see $CACHE_DIR/base/import.log"
    fi
    BASE_IMAGE="$LOCAL_BASE_TAG"
}

choose_base() {
    if [ -n "${BASE_IMAGE:-}" ]; then
        note "base image: $BASE_IMAGE (from BASE_IMAGE)"
        return
    fi
    local kind="${BIDS_APP_BASE:-}"
    if [ -z "$kind" ]; then
        if command -v mmdebstrap >/dev/null 2>&1 || image_exists "$LOCAL_BASE_TAG"; then
            kind=local
        else
            kind=official
        fi
    fi
    case "$kind" in
    local) make_local_base ;;
    official) BASE_IMAGE="" ;; # the Dockerfile's digest-pinned default
    *) die "BIDS_APP_BASE must be 'local' or 'official', got '$kind'" ;;
    esac
    note "base image: ${BASE_IMAGE:-the Dockerfile default (python:3.11-slim-bookworm, pinned)}"
}

# ---- wheelhouse (offline install inside the build) --------------------------------------------
prepare_wheelhouse() {
    local wheelhouse="$CACHE_DIR/wheelhouse"
    local key
    key="$( (cat "$ROOT/constraints.txt" && printf '%s\n' "${BUILD_REQUIREMENTS[@]}") | sha256sum | cut -d' ' -f1)"
    if [ -f "$wheelhouse/.key" ] && [ "$(cat "$wheelhouse/.key")" = "$key" ]; then
        note "wheelhouse: cached ($(find "$wheelhouse" -name '*.whl' | wc -l) wheels)"
        return
    fi
    local pyver
    pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" ||
        die "PYTHON=$PYTHON is not a working Python (set PYTHON=/path/to/python3.11)"
    [ "$pyver" = "3.11" ] ||
        die "the wheelhouse must be built with Python 3.11 (the image's Python); PYTHON=$PYTHON is" \
            "$pyver. Set PYTHON=/path/to/python3.11 or PIP_INSTALL_MODE=online."
    log "building the wheelhouse with $PYTHON -m pip wheel (cached in $wheelhouse)"
    local t0=$SECONDS
    rm -rf "$wheelhouse" "$wheelhouse.partial"
    mkdir -p "$CACHE_DIR"
    if ! "$PYTHON" -m pip wheel --disable-pip-version-check --wheel-dir "$wheelhouse.partial" \
        --requirement "$ROOT/constraints.txt" "${BUILD_REQUIREMENTS[@]}" \
        >"$CACHE_DIR/wheelhouse.log" 2>&1; then
        tail -n 20 "$CACHE_DIR/wheelhouse.log" >&2
        die "pip wheel failed (network? constraints.txt out of date?); log in $CACHE_DIR/wheelhouse.log"
    fi
    printf '%s\n' "$key" >"$wheelhouse.partial/.key"
    mv "$wheelhouse.partial" "$wheelhouse"
    note "wheelhouse: built in $((SECONDS - t0)) s ($(find "$wheelhouse" -name '*.whl' | wc -l) wheels)"
}

# ---- build ------------------------------------------------------------------------------------
app_version() {
    # The build context has no .git, so the version is computed here and passed in: setuptools_scm
    # (what hatch-vcs uses), else the installed bids_app's version, else a placeholder.
    local v=""
    v="$(cd "$ROOT" && "$PYTHON" -m setuptools_scm 2>/dev/null | tail -n 1)" || v=""
    if [ -z "$v" ]; then
        v="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("bids_app"))' 2>/dev/null)" || v=""
    fi
    printf '%s\n' "${v:-0.0.0+unknown}"
}

build_image() {
    VERSION="$(app_version)"
    local revision
    revision="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
    local args=(--file "$ROOT/Dockerfile" --tag "$IMAGE"
        --build-arg "PIP_INSTALL_MODE=$PIP_INSTALL_MODE"
        --build-arg "VERSION=$VERSION"
        --build-arg "REVISION=$revision"
        --build-arg "IMAGE_TAG=$IMAGE")
    [ -n "${BASE_IMAGE:-}" ] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
    mkdir -p "$CACHE_DIR"
    log "building $IMAGE (version $VERSION, log in $CACHE_DIR/build.log)"
    local t0=$SECONDS
    if ! engine build "${args[@]}" "$ROOT" >"$CACHE_DIR/build.log" 2>&1; then
        tail -n 40 "$CACHE_DIR/build.log" >&2
        die "image build failed; full log in $CACHE_DIR/build.log"
    fi
    note "build: $((SECONDS - t0)) s"
}

image_size() {
    local bytes
    bytes="$(engine image inspect --format '{{.Size}}' "$IMAGE" 2>/dev/null || echo 0)"
    note "image size: $((bytes / 1000000)) MB ($IMAGE)"
}

# ---- runs -------------------------------------------------------------------------------------
set_run_options() {
    RUN_UID="$(id -u)"
    RUN_GID="$(id -g)"
    if [ "$RUN_UID" = 0 ]; then
        # Running as root on the host: still test as a non-root uid without a passwd entry.
        RUN_UID=4321
        RUN_GID=4321
    fi
    RUN_OPTS=(--rm --network none --read-only --tmpfs /tmp -u "$RUN_UID:$RUN_GID")
    if [ "$ENGINE" = podman ] && [ "$(podman info --format '{{.Host.Security.Rootless}}')" = true ]; then
        RUN_OPTS+=(--userns=keep-id) # rootless: map the host user to the same uid inside
    fi
}

new_host_dir() {
    mkdir -p "$1"
    if [ "$(id -u)" = 0 ]; then chown "$RUN_UID:$RUN_GID" "$1"; fi
}

# run NAME [engine run args...]: runs, logs to $LOG_DIR/NAME.log, returns the exit code
run_logged() {
    local name="$1"
    shift
    local t0=$SECONDS rc=0
    log "$name: $ENGINE run ${RUN_OPTS[*]} $*"
    engine run "${RUN_OPTS[@]}" "$@" >"$LOG_DIR/$name.log" 2>&1 || rc=$?
    note "$name: exit $rc in $((SECONDS - t0)) s"
    if [ "$rc" != 0 ]; then
        tail -n 40 "$LOG_DIR/$name.log" >&2
        log "full log: $LOG_DIR/$name.log"
    fi
    return "$rc"
}

tree_digest() {
    # Content, names, sizes, permissions and mtimes of every entry.
    (cd "$1" && find . -printf '%p %y %m %s %T@\n' | LC_ALL=C sort &&
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) | sha256sum | cut -d' ' -f1
}

smoke_basic() {
    run_logged version "$IMAGE" --version || die "--version failed"
    grep -qF "$VERSION" "$LOG_DIR/version.log" ||
        die "--version printed '$(cat "$LOG_DIR/version.log")', expected $VERSION"
    run_logged help "$IMAGE" --help || die "--help failed"
    grep -q "participant" "$LOG_DIR/help.log" || die "--help does not describe the analysis levels"
    run_logged no-simulator --entrypoint python "$IMAGE" -c \
        "import importlib.util, sys; sys.exit(importlib.util.find_spec('petsim') is not None)" ||
        die "the image contains the simulator (petsim); it must ship the app only"
}

make_study() {
    # The simulator is not in the image: generate the study on the host, then make it readable
    # by the container's uid (the generator writes a private temporary folder).
    PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -c "import petsim" 2>/dev/null ||
        die "PYTHON=$PYTHON cannot import petsim; install its requirements:" \
            "$PYTHON -m pip install -r $ROOT/petsim/requirements.txt -c $ROOT/constraints.txt"
    new_host_dir "$WORK/study"
    local t0=$SECONDS
    PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m petsim "$WORK/study/example" \
        --small >"$LOG_DIR/simulate.log" 2>&1 || {
        tail -n 40 "$LOG_DIR/simulate.log" >&2
        die "generating the synthetic study on the host failed; log in $LOG_DIR/simulate.log"
    }
    chmod -R a+rX "$WORK/study"
    note "simulate (host, python -m petsim --small): $((SECONDS - t0)) s"
    STUDY="$WORK/study/example/bids"
    [ -f "$STUDY/dataset_description.json" ] || die "the simulation wrote no BIDS dataset in $STUDY"
}

smoke_dry_run() {
    new_host_dir "$WORK/dry"
    run_logged dry-run -v "$STUDY:/data:ro" -v "$WORK/dry:/out" "$IMAGE" \
        /data /out participant --dry-run --skip-bids-validation ||
        die "the participant dry run failed"
}

smoke_full() {
    local out="$WORK/out"
    new_host_dir "$out"
    local mounts=(-v "$STUDY:/data:ro" -v "$out:/out")
    # The default work dir (OUTPUT_DIR/../bids_app_work) would be on the read-only root: use /tmp.
    run_logged participant "${mounts[@]}" "$IMAGE" /data /out participant \
        --work-dir /tmp/bids_app_work --nprocs "$NPROCS" || die "the participant level failed"
    run_logged group "${mounts[@]}" "$IMAGE" /data /out group --work-dir /tmp/bids_app_work ||
        die "the group level failed"

    local missing=()
    [ -s "$out/dataset_description.json" ] || missing+=(dataset_description.json)
    grep -q '"Container"' "$out/dataset_description.json" 2>/dev/null ||
        missing+=("GeneratedBy.Container in dataset_description.json")
    find "$out" -path '*/pet/*' -name '*meas-BPND_mimap.nii.gz' | grep -q . ||
        missing+=("a *_meas-BPND_mimap.nii.gz map")
    [ -s "$out/group/clusters.tsv" ] || missing+=(group/clusters.tsv)
    [ -s "$out/group/group.html" ] || missing+=(group/group.html)
    [ "${#missing[@]}" = 0 ] || die "missing outputs in $out: ${missing[*]}"
    note "outputs: dataset_description.json, $(find "$out" -name '*meas-BPND_mimap.nii.gz' | wc -l) BPND maps, group/clusters.tsv ($(($(wc -l <"$out/group/clusters.tsv") - 1)) clusters), group/group.html"
}

main() {
    local t_start=$SECONDS
    choose_engine
    if [ "${BIDS_APP_SKIP_BUILD:-0}" = 1 ]; then
        image_exists "$IMAGE" || die "BIDS_APP_SKIP_BUILD=1 but $IMAGE does not exist"
        VERSION="$(engine image inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$IMAGE")"
    else
        choose_base
        case "$PIP_INSTALL_MODE" in
        wheelhouse) prepare_wheelhouse ;;
        online) ;;
        *) die "PIP_INSTALL_MODE must be 'wheelhouse' or 'online', got '$PIP_INSTALL_MODE'" ;;
        esac
        build_image
    fi
    image_size

    WORK="$(mktemp -d "${TMPDIR:-/tmp}/bids_app_container_test.XXXXXX")"
    chmod 755 "$WORK"
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        log "keeping $WORK"
    else
        trap 'rm -rf "$WORK"' EXIT
    fi
    LOG_DIR="$CACHE_DIR/logs" # the container runs' logs, kept after the run
    rm -rf "$LOG_DIR"
    mkdir -p "$LOG_DIR"
    set_run_options

    smoke_basic
    make_study
    local before after
    before="$(tree_digest "$STUDY")"
    smoke_dry_run
    if [ "$SMOKE" = full ]; then
        smoke_full
    else
        note "participant/group runs skipped (BIDS_APP_CONTAINER_SMOKE=$SMOKE)"
    fi
    after="$(tree_digest "$STUDY")"
    [ "$before" = "$after" ] || die "the input BIDS tree changed during the runs"
    note "input tree unchanged (sha256 $before)"

    printf '\nPASS: container test of %s in %d s\n' "$IMAGE" "$((SECONDS - t_start))"
    printf '  %s\n' "${SUMMARY[@]}"
}

main "$@"

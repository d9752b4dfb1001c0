# Sourced by scripts/up and scripts/test: makes this machine able to run citytel.
# Installs the Debian packages for the servers when missing (as root), creates .venv
# and installs the project into it. Safe to run again; it skips what is done.
set -euo pipefail

CITYTEL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$CITYTEL_ROOT"

log() { printf 'citytel setup: %s\n' "$*" >&2; }

have_postgres_server() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null
}

ensure_servers() {
    local missing=()
    command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
    # tests/deploy verifies the systemd units; the package is on Debian already, as a rule
    command -v systemd-analyze >/dev/null || missing+=(systemd)
    have_postgres_server || missing+=(postgresql)
    # the console's browser tests drive Debian's chromium (Playwright never downloads one);
    # scripts/test needs it, scripts/up does not
    if [ "$(basename "$0")" = test ]; then [ -x /usr/bin/chromium ] || missing+=(chromium); fi
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages: ${missing[*]}"
        log "install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Services are not started here: citytel runs its own broker and cluster under ./var.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
    local python="${CITYTEL_PYTHON:-python3}"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        log "citytel needs Python 3.11 or newer ($python is $("$python" -V 2>&1))"; exit 1; }
    [ -x .venv/bin/python ] || { log "creating .venv"; "$python" -m venv .venv; }
    local stamp=.venv/.citytel-installed
    local want
    want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "installing citytel and its dependencies into .venv (versions: constraints.txt)"
        .venv/bin/python -m pip install -q --upgrade pip >/dev/null
        # constraints.txt locks every version (pip freeze --exclude-editable of a fresh .venv)
        .venv/bin/python -m pip install -q -c constraints.txt -e ".[test,dev,bench]"
        echo "$want" > "$stamp"
    fi
}

ensure_servers
ensure_venv
export PATH="$CITYTEL_ROOT/.venv/bin:$PATH"

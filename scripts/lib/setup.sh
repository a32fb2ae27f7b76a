# shellcheck shell=bash
# Sourced by every script in scripts/: makes a Node >= 22 the first `node` on
# PATH (installing the registry's `node` package into .tools/node when the
# machine's is older), installs node_modules when the lock file changed,
# compiles src/ to dist/ when the sources changed (spawned replicas run it:
# no type stripper, less memory), installs bubblewrap (the workers' shell
# sandbox) and slirp4netns (the network of network: true tasks) when missing
# and we are root, and finds a nats-server (installing Debian's when we are
# root).
# Idempotent and quiet when there is nothing to do.

SQUAD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SQUAD_NODE_MAJOR_MIN=22
SQUAD_NODE_VERSION="${SQUAD_NODE_VERSION:-24}"
SQUAD_LOCAL_NODE_DIR="$SQUAD_ROOT/.tools/node"

squad_log() { printf '[setup] %s\n' "$*" >&2; }

squad_node_major() { # $1 = node binary
  "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

squad_ensure_node() {
  local local_bin="$SQUAD_LOCAL_NODE_DIR/node_modules/node/bin"
  if [ -x "$local_bin/node" ] && [ "$(squad_node_major "$local_bin/node")" -ge "$SQUAD_NODE_MAJOR_MIN" ]; then
    export PATH="$local_bin:$PATH"
    return 0
  fi
  if command -v node >/dev/null 2>&1 && [ "$(squad_node_major node)" -ge "$SQUAD_NODE_MAJOR_MIN" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    squad_log "error: Node >= $SQUAD_NODE_MAJOR_MIN is required and npm is not available to install it."
    squad_log "Install Node $SQUAD_NODE_VERSION LTS (https://nodejs.org) and run this again."
    return 3
  fi
  squad_log "Node $(node --version 2>/dev/null || echo none) is older than $SQUAD_NODE_MAJOR_MIN; installing node@$SQUAD_NODE_VERSION into .tools/node"
  mkdir -p "$SQUAD_LOCAL_NODE_DIR"
  [ -f "$SQUAD_LOCAL_NODE_DIR/package.json" ] || echo '{"name":"squad-local-node","private":true}' >"$SQUAD_LOCAL_NODE_DIR/package.json"
  (cd "$SQUAD_LOCAL_NODE_DIR" && npm install --no-audit --no-fund --loglevel=error "node@$SQUAD_NODE_VERSION" >&2) || {
    squad_log "error: could not install node@$SQUAD_NODE_VERSION from the npm registry"
    return 3
  }
  if [ ! -x "$local_bin/node" ]; then
    squad_log "error: node@$SQUAD_NODE_VERSION installed but $local_bin/node is missing (did its install script run?)"
    return 3
  fi
  export PATH="$local_bin:$PATH"
  squad_log "using $(node --version) from .tools/node"
}

squad_ensure_packages() {
  local stamp="$SQUAD_ROOT/node_modules/.package-lock.json"
  if [ -f "$stamp" ] && [ ! "$SQUAD_ROOT/package-lock.json" -nt "$stamp" ]; then
    return 0
  fi
  squad_log "installing packages (npm ci)"
  (cd "$SQUAD_ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2) || {
    squad_log "error: npm ci failed"
    return 3
  }
}

# dist/: src/ transpiled to JavaScript, stamped with a hash of the sources
# (src/client/compiled.ts). The launcher runs replicas from it only while the
# stamp matches the sources, so a failed or missing build just means replicas
# run the sources: a warning, never a failed set-up.
squad_ensure_build() {
  if [ ! -d "$SQUAD_ROOT/node_modules/typescript" ]; then return 0; fi
  node "$SQUAD_ROOT/src/client/compiled.ts" ||
    squad_log "warning: could not compile src/ to dist/; replicas will run the sources (more memory)"
  return 0
}

# Installs Debian packages (as root), running `apt-get update` once per set-up
# however many packages are missing.
squad_apt_install() {
  if [ -z "${SQUAD_APT_UPDATED:-}" ]; then
    apt-get update -qq >&2 || return 1
    SQUAD_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# Finds nats-server: $NATS_SERVER_BIN, then PATH, then /usr/sbin (Debian), else
# installs Debian's package when root. Exports NATS_SERVER_BIN when found.
squad_ensure_nats_server() {
  local mode="${1:-install}" # install | find
  if [ -n "${NATS_SERVER_BIN:-}" ] && [ -x "$NATS_SERVER_BIN" ]; then return 0; fi
  local found
  found="$(command -v nats-server 2>/dev/null || true)"
  [ -z "$found" ] && [ -x /usr/sbin/nats-server ] && found=/usr/sbin/nats-server
  if [ -n "$found" ]; then
    export NATS_SERVER_BIN="$found"
    return 0
  fi
  if [ "$mode" = install ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    squad_log "nats-server not found; installing Debian's package (apt-get install nats-server)"
    if squad_apt_install nats-server; then
      # Debian's package starts a system service; we only want the binary.
      found="$(command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server)"
      if [ -x "$found" ]; then
        export NATS_SERVER_BIN="$found"
        return 0
      fi
    fi
  fi
  squad_log "nats-server not found. Install it: 'apt-get install nats-server' (Debian/Ubuntu),"
  squad_log "'brew install nats-server' (macOS), or download from https://github.com/nats-io/nats-server/releases;"
  squad_log "or set NATS_SERVER_BIN, or point NATS_URL at a running server with JetStream."
  return 3
}

# bubblewrap (`bwrap`) confines the workers' shell commands (docs/security.md).
# Installs Debian's package when missing and we are root; otherwise says what
# happens without it. Never fails the set-up: a worker without it falls back to
# `sandbox: none` with a loud warning, or refuses to start if the roster asks
# for bwrap.
squad_ensure_bwrap() {
  if command -v bwrap >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    squad_log "bwrap not found; installing Debian's bubblewrap (the workers' shell sandbox)"
    if squad_apt_install bubblewrap &&
      command -v bwrap >/dev/null 2>&1; then
      return 0
    fi
  fi
  squad_log "warning: bubblewrap (bwrap) is not installed: worker shell commands will run unsandboxed."
  squad_log "Install it: 'apt-get install bubblewrap' (Debian/Ubuntu), 'dnf install bubblewrap' (Fedora)."
  return 0
}

# setpriv and prlimit (util-linux) and chown (coreutils): a worker running as
# root drops every command to an unprivileged uid with setpriv, after setting
# its hard limits with prlimit, and hands the workspace to that uid with
# chown (docs/security.md). Debian has them in the base system; a minimal
# image may not. Never fails the set-up: without them the sandbox probe
# refuses bwrap and says why.
squad_ensure_confinement_tools() {
  local missing=""
  for tool in setpriv prlimit chown; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
  done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    squad_log "missing:$missing; installing Debian's util-linux and coreutils (the workers' confinement)"
    if squad_apt_install util-linux coreutils &&
      command -v setpriv >/dev/null 2>&1 && command -v prlimit >/dev/null 2>&1; then
      return 0
    fi
  fi
  squad_log "warning:$missing not installed: workers running as root can't drop privileges for commands."
  squad_log "Install util-linux (setpriv, prlimit) and coreutils (chown)."
  return 0
}

# slirp4netns (and iproute2's `ip`) give `network: true` commands a network
# namespace of their own, outbound only, with no way to the host
# (src/tools/task-network.ts). Installs Debian's packages when missing and we
# are root. Never fails the set-up: without them a worker says why at start,
# and its `network: true` commands fail (they never use the host's network).
squad_have_bin() { # $1 = name; also looks in the sbin directories a user's PATH may lack
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}
squad_ensure_task_network() {
  local missing=()
  squad_have_bin slirp4netns || missing+=(slirp4netns)
  squad_have_bin ip || missing+=(iproute2)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    squad_log "installing Debian's ${missing[*]} (the network of network: true tasks)"
    if squad_apt_install "${missing[@]}" &&
      squad_have_bin slirp4netns && squad_have_bin ip; then
      return 0
    fi
  fi
  squad_log "warning: ${missing[*]} not installed: commands of agents with policy network: true will fail."
  squad_log "Install it: 'apt-get install slirp4netns iproute2' (Debian/Ubuntu), 'dnf install slirp4netns iproute' (Fedora)."
  return 0
}

# openssl makes the TLS certificates of the auth tests (tests/bus/nats-auth-connect.test.ts);
# scripts/test installs it when missing and we are root. Never fails the set-up.
squad_ensure_openssl() {
  command -v openssl >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    squad_log "installing Debian's openssl (TLS certificates for the NATS auth tests)"
    squad_apt_install openssl && return 0
  fi
  squad_log "warning: openssl is not installed: the TLS test of tests/bus/nats-auth-connect.test.ts will fail."
  return 0
}

# Chromium runs the dashboard's browser tests (tests/dashboard/, driven by
# playwright-core); scripts/test installs Debian's package when missing and
# we are root. Never fails the set-up: without it those tests fail and say how
# to get it (they never skip). CHROMIUM_PATH names another Chromium.
squad_have_chromium() {
  [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ] && return 0
  [ -x /usr/bin/chromium ] || [ -x /usr/bin/chromium-browser ]
}
squad_ensure_chromium() {
  squad_have_chromium && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    squad_log "installing Debian's chromium (the dashboard's browser tests)"
    squad_apt_install chromium &&
      squad_have_chromium && return 0
  fi
  squad_log "warning: chromium is not installed: the browser tests of tests/dashboard/ will fail."
  squad_log "Install it: 'apt-get install chromium' (Debian/Ubuntu), or set CHROMIUM_PATH."
  return 0
}

# prometheus (and its promtool) scrape and check the swarm's /metrics in
# tests/telemetry/prometheus.test.ts and tests/deploy/compose.test.ts;
# scripts/test installs Debian's package when missing and we are root. Never
# fails the set-up: without it those tests fail and say how to get it.
squad_ensure_prometheus() {
  [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] && return 0
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    squad_log "installing Debian's prometheus (the metrics tests scrape the swarm with it)"
    squad_apt_install --no-install-recommends prometheus && return 0
  fi
  squad_log "warning: prometheus is not installed: tests/telemetry/prometheus.test.ts will fail ('apt-get install prometheus')."
  return 0
}

squad_setup() {
  squad_ensure_node || return $?
  squad_ensure_packages || return $?
  squad_ensure_build
  squad_ensure_bwrap
  squad_ensure_confinement_tools
  squad_ensure_task_network
}

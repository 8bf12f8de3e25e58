#!/usr/bin/env bash
# The one test command: builds the binaries (debug) and runs every test of the workspace,
# including the interop suite (stomp.py against a real mqnode, tests/python), which the Rust
# test `interop::stomp_py_suite_passes` runs. Installs stomp.py and pytest for the current user
# when they are missing, Node.js, Chromium and the npm packages of tests/js for the console
# and WebSocket tests (see below), systemd's systemd-analyze for the packaging test, and
# PostgreSQL (Debian's package) when it is missing.
#
# Environment: CARGO_TARGET_DIR is honoured; MQ_TEST_PROFILE=release runs the tests against
# release binaries (built here with --release).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v python3 >/dev/null; then
    echo "test.sh: python3 is required for the interop tests (apt-get install python3 python3-pip)" >&2
    exit 1
fi
if ! python3 -c 'import stomp, pytest' 2>/dev/null; then
    echo "test.sh: installing stomp-py and pytest" >&2
    python3 -m pip install --quiet stomp-py pytest ||
        python3 -m pip install --quiet --user --break-system-packages stomp-py pytest
fi

# Debian packages the tests need, installed quietly when missing: iproute2 (ip netns, tc) for
# the discovery test and the network-namespace harness (tests/src/netns.rs), nftables (nft) for
# its silent link cuts, and ZooKeeper with a JRE for the election tests (tests/src/zookeeper.rs).
# On a new machine of this project's kind (which has a JRE) that is 48 packages: about 17 s.
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v nft >/dev/null || [[ -x /usr/sbin/nft ]] || missing+=(nftables)
command -v java >/dev/null || missing+=(default-jre-headless)
[[ -f /usr/share/java/zookeeper.jar ]] || missing+=(zookeeper)
if ((${#missing[@]})); then
    echo "test.sh: installing ${missing[*]}" >&2
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The console and WebSocket tests (tests/tests/console.rs, cli_console.rs, websocket.rs) run
# Node.js scripts in tests/js: stompjs over ws://, and the web consoles in headless Chromium
# through playwright-core. They need Node.js with npm and Debian's chromium (its own browser
# download does not work offline, so playwright-core drives /usr/bin/chromium), installed here
# when missing, and the npm packages of tests/js (`npm ci`, versions from package-lock.json).
# Run directly with `cargo test`, those tests skip when these are missing, saying why; run
# from here (MQ_REQUIRE_TOOLS=1) a missing tool fails them.
apt_install() {
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    fi
}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "test.sh: installing Node.js and npm for the WebSocket and console tests" >&2
    apt_install nodejs npm
fi
if [[ ! -x /usr/bin/chromium ]]; then
    echo "test.sh: installing Debian's chromium for the console tests" >&2
    apt_install chromium
fi
# The stomp.py TLS test makes its certificates with the openssl command.
if ! command -v openssl >/dev/null; then
    echo "test.sh: installing openssl for the TLS interop test" >&2
    apt_install openssl
fi
# The packaging test checks packaging/mqnode.service with `systemd-analyze verify`.
if ! command -v systemd-analyze >/dev/null; then
    echo "test.sh: installing systemd (systemd-analyze) for the packaging test" >&2
    apt_install systemd
fi
if command -v npm >/dev/null && [[ ! -d tests/js/node_modules/playwright-core ]]; then
    echo "test.sh: installing the npm packages of tests/js (npm ci)" >&2
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi

# The PostgreSQL store's tests start servers of their own from Debian's binaries
# (/usr/lib/postgresql/*/bin); tests/src/postgres.rs runs them as the package's user postgres
# when the tests run as root.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "test.sh: installing postgresql for the PostgreSQL store's tests" >&2
    started=$SECONDS
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    echo "test.sh: postgresql installed in $((SECONDS - started)) s" >&2
fi

profile=()
if [[ "${MQ_TEST_PROFILE:-}" == release ]]; then
    profile=(--release)
fi

# The binaries, and the examples the tests run (tests/examples/zk_member.rs).
cargo build --workspace --bins --examples "${profile[@]}"
# Every test of the workspace: unit tests, the in-process broker tests (node/tests/embedded.rs)
# and the integration tests, one binary `integration` (tests/tests/main.rs, a module per
# capability) that starts real nodes. Its module `interop` runs the stomp.py suite, and its
# discovery test re-runs the binary inside a network namespace, filtered to itself.
MQ_REQUIRE_TOOLS=1 cargo test --workspace --no-fail-fast "${profile[@]}"

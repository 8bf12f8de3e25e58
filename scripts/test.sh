#!/usr/bin/env bash
# The one test command: builds the binaries (debug) and runs every test of the workspace,
# including the interop suite (stomp.py against a real mqnode, tests/python), which the Rust
# test `interop::stomp_py_suite_passes` runs. Installs stomp.py and pytest for the current user
# when they are missing, and PostgreSQL (Debian's package) when it is missing.
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

# The multicast discovery test runs its nodes inside a network namespace it creates (ip netns).
if ! command -v ip >/dev/null; then
    echo "test.sh: installing iproute2 (ip netns) for the discovery test" >&2
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
    fi
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

cargo build --workspace --bins "${profile[@]}"
# Every test of the workspace: unit tests, the in-process broker tests (node/tests/embedded.rs)
# and the integration tests, one binary `integration` (tests/tests/main.rs, a module per
# capability) that starts real nodes. Its module `interop` runs the stomp.py suite, and its
# discovery test re-runs the binary inside a network namespace, filtered to itself.
cargo test --workspace --no-fail-fast "${profile[@]}"

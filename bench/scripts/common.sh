# What the bench scripts share; sourced (after `set -euo pipefail`), not run.
# Moves to the repository, and gives:
# - release_build PACKAGE...: `cargo build --release` of those packages,
#   unless SKIP_BUILD=1;
# - $target: cargo's target directory;
# - free_port: a free TCP port on 127.0.0.1;
# - $work: a scratch directory, and $pids: processes to stop; both are
#   cleaned up when the script exits.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

release_build() {
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        local packages=()
        for package in "$@"; do packages+=(-p "$package"); done
        cargo build --release --locked "${packages[@]}" >&2
    fi
}

target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

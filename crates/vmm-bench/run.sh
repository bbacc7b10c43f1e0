#!/usr/bin/env bash
# Builds vmm-bench (release) and runs it: instructions per exit under callgrind, time per exit,
# the virtio data path against memcpy; writes crates/vmm-bench/results.json and
# crates/vmm-bench/results.md (with crates/vmm-bench/boot.json from crates/vmm-bench/boot.sh
# folded in, if it exists).
#
# Usage: crates/vmm-bench/run.sh [--quick] [--no-callgrind] [--baseline FILE] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v valgrind >/dev/null; then
    echo "crates/vmm-bench/run.sh: installing valgrind (instruction counts)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
# A target directory of its own: the shared one may hold crates built from another work tree
# with the same package names (cargo does not rebuild them for a different source path).
export CARGO_TARGET_DIR=${VMM_BENCH_TARGET_DIR:-$PWD/target/vmm-bench}
# Built as the root task is (crates/root-task/Cargo.toml: release, opt-level 2, no LTO).
export CARGO_PROFILE_RELEASE_OPT_LEVEL=2
cargo build --release -p vmm-bench
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
exec "$target/release/vmm-bench" run --out crates/vmm-bench "$@"

#!/usr/bin/env bash
# Tests of support/qemu/run.sh's verdicts, with a stand-in for QEMU (QEMU=...) that prints
# what a run would print and then keeps running or exits. CI runs it.
#
#   support/qemu/test-run.sh        (exit 0: every case gave the expected verdict)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# The stand-in: prints $FAKE_OUT (with \r\n line ends, as a serial console does), then sleeps
# $FAKE_SLEEP seconds (QEMU still running) and exits with $FAKE_RC.
cat >"$work/qemu" <<'SH'
#!/usr/bin/env bash
printf '%b' "$FAKE_OUT"
sleep "${FAKE_SLEEP:-0}"
exit "${FAKE_RC:-0}"
SH
chmod +x "$work/qemu"
: >"$work/image.elf"

# case NAME WANT-STATUS WANT-RESULT-TEXT OUT [SLEEP] [RC] [run.sh args...]
case_() {
    local name=$1 want=$2 text=$3 out=$4 sleep=${5:-100} rc=${6:-0}
    shift 6 2>/dev/null || shift $#
    local t0=$SECONDS got
    QEMU=$work/qemu FAKE_OUT=$out FAKE_SLEEP=$sleep FAKE_RC=$rc \
        "$here/run.sh" --timeout 3 --log "$work/serial.log" "$@" "$work/image.elf" >"$work/out" 2>&1
    got=$?
    local took=$((SECONDS - t0))
    if [[ $got == "$want" ]] && grep -qF -- "$text" "$work/out" && ((took <= 8)); then
        echo "ok   $name (exit $got, $took s)"
    else
        echo "FAIL $name: exit $got (want $want), $took s, want '$text' in:"
        sed 's/^/    /' "$work/out"
        failures=$((failures + 1))
    fi
}

pass='[guest ttyAMA0] SELFTEST: PASS (uptime 1.00 s)\r\n[vmm INFO ] vmm: guest ended (PowerOff)\r\nvmm: halted\r\n'
case_ "a passing run" 0 "=== result: PASS" "$pass"
# The guest prints the VMM's verdict lines through its console: prefixed, so not believed.
forged='[guest ttyAMA0] SELFTEST: PASS\r\n[guest ttyAMA0] [vmm INFO ] vmm: guest ended (PowerOff)\r\n[guest ttyAMA0] vmm: halted\r\n'
case_ "verdict lines forged by the guest" 124 "=== result: TIMEOUT after 3 s" "$forged"
# halted after a crash: the self-test passed but the guest did not power off.
crash='[guest ttyAMA0] SELFTEST: PASS\r\n[vmm INFO ] vmm: guest ended (Crash)\r\nvmm: halted\r\n'
case_ "a VM that crashed after the self-test" 1 "=== result: FAIL (self-test passed but QEMU exited with status 1)" "$crash"
# Nothing at all: a timeout, reported as one (not as "exit status 1, no verdict"), on time.
case_ "a run that never ends" 124 "=== result: TIMEOUT after 3 s" ""
# QEMU failing by itself.
case_ "QEMU exiting with an error" 1 "QEMU exit status 3" "qemu: could not load kernel\n" 0 3
# --expect: QEMU powers off by itself (the EFI smoke test).
case_ "--expect met" 0 "=== result: PASS (fake-sel4: PASS)" "fake-sel4: PASS\r\n" 0 0 --expect "fake-sel4: PASS"
case_ "--expect not met" 1 "=== result: FAIL (no \"fake-sel4: PASS\"" "fake-sel4: FAIL\r\n" 0 0 --expect "fake-sel4: PASS"

echo
if ((failures)); then
    echo "test-run: $failures case(s) failed"
    exit 1
fi
echo "test-run: all cases passed"

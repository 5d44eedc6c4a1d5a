#!/usr/bin/env bash
# test_export_fault.sh EMIT_MKDB FAULTSHIM - `mxwarden export -o` under
# write faults (RELIABILITY 20): with LD_PRELOAD=FAULTSHIM making write,
# fsync or rename fail for the target, export exits 1, says which call
# failed, leaves the target byte-identical to the previous version and no
# temp file beside it; without the fault the same export writes the new
# version. The shim is preloaded into mxwarden only (not into bash).
set -u
mkdb=$1
shim=$2
: "${MXWARDEN:?}"
dir=$(mktemp -d /tmp/mxw-export-fault.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "PASS: $*"; }
# the ASan build's runtime must not object to a preloaded library
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

printf '[safety]\nprotected_networks = 10.0.0.0/8, ::1\n' >"$dir/conf.ini"
fixnow=1798800000
"$mkdb" "$dir/fix.db" $fixnow || { echo "FAIL: emit_mkdb"; exit 1; }
export MXWARDEN_NOW_FROZEN=1
# version 1, then version 2 (200 s later the 120 s defer has expired)
MXWARDEN_NOW=@$fixnow "$MXWARDEN" export --format plain -c "$dir/conf.ini" --db "$dir/fix.db" \
	-o "$dir/block.list" 2>"$dir/err" || { echo "FAIL: first export: $(cat "$dir/err")"; exit 1; }
cp "$dir/block.list" "$dir/v1"
grep -q '^198.51.100.9/32$' "$dir/v1" || bad "version 1 lacks 198.51.100.9"
for op in write fsync rename; do
	MXW_FAULT_PATH=block.list MXW_FAULT_OPS=$op MXWARDEN_NOW=@$((fixnow + 200)) LD_PRELOAD="$shim" \
		"$MXWARDEN" export --format plain -c "$dir/conf.ini" --db "$dir/fix.db" -o "$dir/block.list" \
		2>"$dir/err"
	rc=$?
	[ $rc = 1 ] && ok "$op fault: export exits 1" || bad "$op fault: exit $rc, want 1"
	cmp -s "$dir/block.list" "$dir/v1" && ok "$op fault: target byte-identical to version 1" ||
		bad "$op fault: target changed"
	temps=$(ls -A "$dir" | grep -c '^\.')
	[ "$temps" = 0 ] && ok "$op fault: no temp file" || bad "$op fault: temp files: $(ls -A "$dir")"
	grep -q "cannot $op" "$dir/err" && ok "$op fault: logged ($(head -c 120 "$dir/err"))" ||
		bad "$op fault: no 'cannot $op' in: $(cat "$dir/err")"
done
MXWARDEN_NOW=@$((fixnow + 200)) "$MXWARDEN" export --format plain -c "$dir/conf.ini" --db "$dir/fix.db" \
	-o "$dir/block.list" 2>"$dir/err" && grep -q "written (" "$dir/err" &&
	! grep -q '198.51.100.9' "$dir/block.list" && grep -q '^198.51.100.7/32$' "$dir/block.list" &&
	ok "without the fault: version 2 written" || bad "without the fault: $(cat "$dir/err")"
exit $fail

#!/usr/bin/env bash
# test_run_reload.sh EMIT_MKDB - the whole path with real consumers: decisions
# in the database, `mxwarden run` writes an ipset and an nft output and runs
# their reload commands (ipset restore / nft -f inside a network namespace
# this test creates, no shell), then the kernel sets hold the blocked
# address and not the allowed one; when a decision expires it leaves the
# kernel sets (its element timeout, then the rewrite and reload).
# SKIP (77) when namespaces, ipset or nft are not available.
set -u
mkdb=$1
: "${MXWARDEN:?}"
for p in ip ipset nft; do
	command -v $p >/dev/null || { echo "SKIP: $p not installed"; exit 77; }
done
ns=mxwrun$$
ip netns add $ns 2>/dev/null || { echo "SKIP: cannot create a network namespace"; exit 77; }
dir=$(mktemp -d /tmp/mxw-runreload.XXXXXX)
run_pid=
cleanup() {
	[ -n "$run_pid" ] && kill "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null
	ip netns del $ns 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "PASS: $*"; }
ipbin=$(command -v ip) ipsetbin=$(command -v ipset) nftbin=$(command -v nft)
now=$(date +%s)
"$mkdb" "$dir/run.db" "$now" 4 || { echo "FAIL: emit_mkdb"; exit 1; }
cat >"$dir/conf.ini" <<INI
[safety]
protected_networks = 10.0.0.0/8, ::1
allow = 198.51.100.200
[output fw]
format = ipset
path = $dir/ipset
reload = $ipbin netns exec $ns $ipsetbin restore -file $dir/ipset
reload_timeout = 10s
[output nf]
format = nft
path = $dir/nft
reload = $ipbin netns exec $ns $nftbin -f $dir/nft
INI
"$MXWARDEN" run -c "$dir/conf.ini" --db "$dir/run.db" --listen 127.0.0.1:0 >"$dir/run.log" 2>&1 &
run_pid=$!
# strace attached to it, when that works here: the reload commands after
# the expiry must be exec'd directly, never through a shell
strace_pid=
if command -v strace >/dev/null && strace -f -e trace=execve -o /dev/null true 2>/dev/null; then
	strace -f -qq -e trace=execve -o "$dir/trace" -p "$run_pid" 2>/dev/null &
	strace_pid=$!
else
	echo "note: strace unavailable or not permitted; the no-shell check is skipped"
fi
inset() { ip netns exec $ns ipset -q test mxwarden4 "$1"; }
innft() { ip netns exec $ns nft get element inet mxwarden v4 "{ $1 }" >/dev/null 2>&1; }
loaded=0
for _ in $(seq 100); do
	if inset 198.51.100.99 && innft 198.51.100.99; then loaded=1; break; fi
	sleep 0.1
done
[ $loaded = 1 ] && ok "run + reload: 198.51.100.99 in the kernel's ipset and nft sets" || bad "not loaded: $(grep -i reload "$dir/run.log" | tail -3)"
inset 203.0.113.9 && innft 203.0.113.9 && ok "the /24 class is loaded (203.0.113.9)" || bad "203.0.113.9 missing"
inset 198.51.100.200 || innft 198.51.100.200 && bad "allowed 198.51.100.200 is in a kernel set" || ok "allowed 198.51.100.200 is in no kernel set"
gone=0
for _ in $(seq 150); do
	if ! inset 198.51.100.99 && ! innft 198.51.100.99; then gone=1; break; fi
	sleep 0.1
done
[ $gone = 1 ] && ok "after its expiry 198.51.100.99 left both kernel sets" || bad "198.51.100.99 still in a set after its expiry"
inset 198.51.100.7 && ok "the other blocks stay (198.51.100.7)" || bad "198.51.100.7 lost"
grep -q "output fw: reload done" "$dir/run.log" && ok "reload logged" || bad "no reload in the log: $(tail -5 "$dir/run.log")"
kill "$run_pid"
wait "$run_pid"
st=$?
run_pid=
[ $st = 0 ] && ok "run stopped cleanly" || bad "run exit $st"
if [ -n "$strace_pid" ]; then
	# strace ends with its tracee; do not wait for ever
	for _ in $(seq 50); do kill -0 "$strace_pid" 2>/dev/null || break; sleep 0.1; done
	kill "$strace_pid" 2>/dev/null
	wait "$strace_pid" 2>/dev/null
	execs=$(grep -c 'execve(' "$dir/trace")
	if grep -E 'execve\("[^"]*/(sh|bash|dash)"' "$dir/trace"; then
		bad "a shell was executed"
	elif grep -q "execve(\"$ipbin\", \[\"$ipbin\", \"netns\", \"exec\", \"$ns\", \"$ipsetbin\", \"restore\"" "$dir/trace"; then
		ok "reload commands exec'd directly with their configured argv, no shell ($execs execve calls)"
	else
		bad "no direct execve of the ipset reload after the expiry: $(grep execve "$dir/trace" | head -5)"
	fi
fi
exit $fail

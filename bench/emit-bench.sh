#!/usr/bin/env bash
# emit-bench.sh [N] - emitter figures from one run (not a test):
#   1. emit_bench: filter+render, validation and atomic write per format for
#      N decisions (default 100000), in-process;
#   2. `mxwarden export` end to end from a database holding them, against
#      `wc -l` on the file it wrote (the floor: reading the bytes once);
#   3. the real consumers loading the files (ipset restore, nft -f in a
#      network namespace, postmap -q, rbldnsd start) when present.
# Run from the source root after ./scripts/build build.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
b=build
dir=$(mktemp -d /tmp/mxw-emit-bench.XXXXXX)
ns=mxwbench$$
trap 'ip netns del $ns 2>/dev/null || true; rm -rf "$dir"' EXIT
ninja -C $b bench/emit_bench cli/mxwarden >/dev/null
$b/bench/emit_bench "$n" "$dir" "$dir/bench.db"
echo
t() { local s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - s) / 1000000 )); }
printf '[safety]\nmax_entries = %d\n' "$n" >"$dir/conf.ini"
for f in plain postfix nft ipset json; do
	ms=$(t $b/cli/mxwarden export --format $f -c "$dir/conf.ini" --db "$dir/bench.db" -o "$dir/x.$f")
	wc_ms=$(t wc -l "$dir/x.$f")
	echo "mxwarden export --format $f: ${ms} ms for $(wc -l <"$dir/x.$f") lines; wc -l on it: ${wc_ms} ms (ratio $(( ms / (wc_ms > 0 ? wc_ms : 1) ))x)"
done
echo
if command -v ipset >/dev/null && ip netns add $ns 2>/dev/null; then
	echo "ipset restore of $n entries: $(t ip netns exec $ns ipset restore -file "$dir/ipset") ms"
	echo "nft -f of $n entries: $(t ip netns exec $ns nft -f "$dir/nft") ms"
fi
if command -v postmap >/dev/null; then
	mkdir -p "$dir/pf" && : >"$dir/pf/main.cf"
	echo "postmap -q (cidr table of $n entries, last entry): $(t postmap -c "$dir/pf" -q 2a01:0:0:0:1:: "cidr:$dir/postfix") ms"
fi

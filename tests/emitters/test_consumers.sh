#!/usr/bin/env bash
# test_consumers.sh EMIT_FIXTURE - load every blocklist format into the real
# program that consumes it and ask that program about a blocked and an
# allowed address:
#   ipset restore + ipset test, nft -c -f + nft -f + nft get element (each in
#   a network namespace this test creates), iptables-restore --test and
#   ip6tables-restore --test, postmap -q on the postfix and postscreen
#   tables, rbldnsd on a loopback port queried with dig.
# A check whose program is missing, or that the kernel refuses (namespaces,
# netfilter), is reported as SKIP with the reason and the others still run;
# the exit status is 77 only when every check was skipped, 1 when any failed.
set -u
fixture=$1
pass=0 fail=0 skip=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
skipped() { echo "SKIP: $*"; skip=$((skip + 1)); }
have() { command -v "$1" >/dev/null 2>&1; }

dir=$(mktemp -d /tmp/mxw-consumers.XXXXXX)
chmod 755 "$dir"
ns=mxwtest$$
ns_made=0
rbl_pid=
cleanup() {
	[ -n "$rbl_pid" ] && kill "$rbl_pid" 2>/dev/null && wait "$rbl_pid" 2>/dev/null
	[ $ns_made = 1 ] && ip netns del "$ns" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

# live timeouts: render at the real time
"$fixture" "$dir" "$(date +%s)" || { echo "FAIL: emit_fixture"; exit 1; }
# the same plus one decision per hostile reason and adversarial log line
# (198.18.0.0/15): every consumer must still load it, with one entry each
mkdir -p "$dir/h" && chmod 755 "$dir/h"
"$fixture" "$dir/h" "$(date +%s)" hostile 2>/dev/null || { echo "FAIL: emit_fixture hostile"; exit 1; }
nh=$(grep -c '^198\.18\.' "$dir/h/plain")
echo "note: $nh hostile decisions in 198.18.0.0/15"

# Blocked: 203.0.113.0/24 (reject), 198.51.100.7 (drop), 198.51.100.9
# (defer), 203.0.113.5 (drop, inside the /24), 2001:db8:5::/64 (reject).
# Allowed: 198.51.100.200. Not listed: 198.51.100.8.

if have ip && ip netns add "$ns" 2>"$dir/ns.err"; then
	ns_made=1
	inns() { ip netns exec "$ns" "$@"; }
else
	echo "note: cannot create a network namespace ($(cat "$dir/ns.err" 2>/dev/null)); namespace checks skip"
fi

# ---------------------------------------------------------------- ipset
if ! have ipset; then
	skipped "ipset: not installed"
elif [ $ns_made = 0 ]; then
	skipped "ipset: no network namespace"
elif ! inns ipset restore -file "$dir/ipset" 2>"$dir/ipset.err"; then
	if grep -qiE "kernel|protocol|not supported|permission" "$dir/ipset.err"; then
		skipped "ipset: the kernel refuses ipset here: $(head -c 200 "$dir/ipset.err")"
	else
		bad "ipset restore: $(head -c 500 "$dir/ipset.err")"
	fi
else
	# a -new set left by an interrupted load, with another definition
	inns ipset create mxwarden4-new hash:net family inet maxelem 128
	# a second load (the next rewrite) must work over the first
	if inns ipset restore -file "$dir/ipset" 2>"$dir/ipset.err"; then ok "ipset restore twice"; else bad "ipset restore again: $(cat "$dir/ipset.err")"; fi
	for a in 203.0.113.9 198.51.100.7 198.51.100.9 203.0.113.5; do
		if inns ipset -q test mxwarden4 "$a"; then ok "ipset test finds $a"; else bad "ipset test: $a not in mxwarden4"; fi
	done
	if inns ipset -q test mxwarden6 2001:db8:5::1; then ok "ipset test finds 2001:db8:5::1"; else bad "ipset test: 2001:db8:5::1 not in mxwarden6"; fi
	for a in 198.51.100.200 198.51.100.8; do
		if inns ipset -q test mxwarden4 "$a"; then bad "ipset test: allowed $a is in the set"; else ok "ipset test does not find $a"; fi
	done
	if inns ipset list mxwarden4 | grep -q 'comment "mxwarden class: 12 of 256'; then ok "ipset keeps the comment"; else bad "ipset comment missing"; fi
	if inns ipset list -n | grep -q -- '-new'; then bad "ipset: a -new set was left behind"; else ok "ipset: no temporary set left"; fi
	if inns ipset restore -file "$dir/h/ipset" 2>"$dir/ipset.err"; then
		got=$(inns ipset list mxwarden4 | grep -c '^198\.18\.')
		if [ "$got" = "$nh" ]; then ok "ipset restore of the hostile file: $got entries"; else bad "ipset hostile: got $got entries, want $nh"; fi
	else
		bad "ipset restore of the hostile file: $(head -c 500 "$dir/ipset.err")"
	fi
fi

# ------------------------------------------------------------------ nft
if ! have nft; then
	skipped "nft: not installed"
elif [ $ns_made = 0 ]; then
	skipped "nft: no network namespace"
else
	if inns nft -c -f "$dir/nft" 2>"$dir/nft.err"; then
		ok "nft -c -f accepts the file"
		if inns nft -f "$dir/nft" 2>"$dir/nft.err" && inns nft -f "$dir/nft" 2>>"$dir/nft.err"; then
			ok "nft -f loads the file (twice)"
			for a in 203.0.113.9 198.51.100.7 203.0.113.5; do
				if inns nft get element inet mxwarden v4 "{ $a }" >/dev/null 2>&1; then ok "nft get element finds $a"; else bad "nft: $a not in v4"; fi
			done
			if inns nft get element inet mxwarden v6 "{ 2001:db8:5::1 }" >/dev/null 2>&1; then ok "nft get element finds 2001:db8:5::1"; else bad "nft: 2001:db8:5::1 not in v6"; fi
			if inns nft get element inet mxwarden v4 "{ 198.51.100.200 }" >/dev/null 2>&1; then bad "nft: allowed 198.51.100.200 is in v4"; else ok "nft get element does not find 198.51.100.200"; fi
			if inns nft -f "$dir/h/nft" 2>"$dir/nft.err"; then
				got=$(inns nft list set inet mxwarden v4 | grep -o '198\.18\.[0-9]*\.[0-9]*' | sort -u | wc -l)
				if [ "$got" = "$nh" ]; then ok "nft -f of the hostile file: $got elements"; else bad "nft hostile: got $got elements, want $nh"; fi
				if inns nft list tables | grep -qv 'inet mxwarden'; then bad "nft hostile: another table appeared: $(inns nft list tables)"; fi
			else
				bad "nft -f of the hostile file: $(head -c 500 "$dir/nft.err")"
			fi
		else
			bad "nft -f: $(head -c 500 "$dir/nft.err")"
		fi
	elif grep -qiE "Operation not permitted|Protocol not supported|netlink" "$dir/nft.err"; then
		skipped "nft: the kernel refuses nftables here: $(head -c 200 "$dir/nft.err")"
	else
		bad "nft -c -f: $(head -c 500 "$dir/nft.err")"
	fi
fi

# ------------------------------------------------------------- iptables
for t in iptables ip6tables; do
	if ! have $t-restore; then
		skipped "$t-restore: not installed"
		continue
	fi
	run=()
	[ $ns_made = 1 ] && run=(ip netns exec "$ns")
	if "${run[@]}" $t-restore --test "$dir/$t" 2>"$dir/$t.err"; then
		ok "$t-restore --test accepts the file"
		if [ $ns_made = 1 ]; then
			if inns $t-restore --noflush "$dir/$t" 2>"$dir/$t.err" && inns $t-restore --noflush "$dir/$t" 2>>"$dir/$t.err"; then
				want=$([ $t = iptables ] && echo "-s 198.51.100.7/32" || echo "-s 2001:db8:5::/64")
				rules=$(inns $t -S mxwarden | grep -c -- "$want")
				if [ "$rules" = 1 ]; then ok "$t-restore --noflush loads the chain (twice, no duplicates)"; else bad "$t: want 1 rule with $want, got $rules"; fi
				if [ $t = iptables ]; then
					if inns $t-restore --noflush "$dir/h/$t" 2>"$dir/$t.err"; then
						got=$(inns $t -S mxwarden | grep -c -- '-s 198\.18\.')
						other=$(inns $t -S | grep -v -- '-A mxwarden\|-N mxwarden\|^-P ' | wc -l)
						if [ "$got" = "$nh" ] && [ "$other" = 0 ]; then ok "$t hostile file: $got rules, no other chain touched"; else bad "$t hostile: got $got rules (want $nh), $other other lines"; fi
					else
						bad "$t-restore of the hostile file: $(head -c 500 "$dir/$t.err")"
					fi
				fi
			else
				bad "$t-restore --noflush: $(head -c 500 "$dir/$t.err")"
			fi
		fi
	elif grep -qiE "Permission denied|not permitted|can't initialize|Protocol not supported|Table does not exist" "$dir/$t.err"; then
		skipped "$t-restore --test: the kernel refuses netfilter here: $(head -c 200 "$dir/$t.err")"
	else
		bad "$t-restore --test: $(head -c 500 "$dir/$t.err")"
	fi
done

# -------------------------------------------------------------- postfix
if ! have postmap; then
	skipped "postmap: not installed"
else
	mkdir -p "$dir/pf" && : >"$dir/pf/main.cf"
	q() { postmap -c "$dir/pf" -q "$1" "cidr:$dir/$2" 2>"$dir/postmap.err"; }
	check() { # address table want(regex or empty)
		got=$(q "$1" "$2")
		if [ -z "$3" ]; then
			if [ -z "$got" ]; then ok "postmap $2 $1: nothing"; else bad "postmap $2 $1: got '$got', want nothing"; fi
		elif printf '%s' "$got" | grep -qE "$3"; then
			ok "postmap $2 $1: $got"
		else
			bad "postmap $2 $1: got '$got' ($(cat "$dir/postmap.err")), want /$3/"
		fi
	}
	url='see https://postmaster\.example\.net/lookup/'
	check 203.0.113.9 postfix "^554 5\.7\.1 mxwarden class: 12 of 256 addresses in 203\.0\.113\.0/24 flagged ${url}203\.0\.113\.0/24$"
	check 198.51.100.7 postfix "^554 5\.7\.1 mxwarden retry: .* ${url}198\.51\.100\.7$"
	check 198.51.100.9 postfix "^450 4\.7\.1 mxwarden backoff: .* ${url}198\.51\.100\.9$"
	check 203.0.113.5 postfix "^554 5\.7\.1 mxwarden auth: AUTH brute force"
	check 2001:db8:5::1 postfix "^554 5\.7\.1 mxwarden harvest: .* ${url}2001:db8:5::/64$"
	check 198.51.100.200 postfix ""
	check 198.51.100.8 postfix ""
	check 198.51.100.7 postscreen "^reject$"
	check 198.51.100.200 postscreen ""
	# every hostile entry answers with exactly one well-formed action
	grep -o '^198\.18\.[0-9.]*' "$dir/h/plain" | postmap -c "$dir/pf" -q - "cidr:$dir/h/postfix" >"$dir/pq" 2>"$dir/postmap.err"
	got=$(grep -cE '^198\.18\.[0-9.]+'$'\t''(450 4\.7\.1|554 5\.7\.1) [^"$]* see https://postmaster\.example\.net/lookup/198\.18\.[0-9.]+$' "$dir/pq")
	lines=$(wc -l <"$dir/pq")
	if [ "$got" = "$nh" ] && [ "$lines" = "$nh" ]; then ok "postmap hostile table: $got well-formed answers"; else bad "postmap hostile: $got well-formed of $lines answers, want $nh: $(head -c 300 "$dir/pq")"; fi
fi

# -------------------------------------------------------------- rbldnsd
if ! have rbldnsd || ! have dig; then
	skipped "rbldnsd/dig: not installed"
else
	port=$((20000 + $$ % 20000))
	rbldnsd -n -q -b "127.0.0.1/$port" -r "$dir" bl.test:ip4trie:rbldnsd bl6.test:ip6trie:rbldnsd6 hbl.test:ip4trie:h/rbldnsd \
		>"$dir/rbl.out" 2>&1 &
	rbl_pid=$!
	up=0
	for _ in $(seq 50); do
		if dig +time=1 +tries=1 @127.0.0.1 -p "$port" 1.0.0.127.bl.test A >/dev/null 2>&1; then up=1; break; fi
		sleep 0.1
	done
	if [ $up = 0 ]; then
		bad "rbldnsd did not answer on 127.0.0.1:$port: $(head -c 300 "$dir/rbl.out")"
	else
		d() { dig +short +time=2 +tries=1 @127.0.0.1 -p "$port" "$1" "$2"; }
		dstatus() { dig +time=2 +tries=1 @127.0.0.1 -p "$port" "$1" A | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
		a=$(d 9.113.0.203.bl.test A)
		if [ "$a" = 127.0.0.2 ]; then ok "rbldnsd 203.0.113.9: A $a"; else bad "rbldnsd 203.0.113.9: A '$a', want 127.0.0.2"; fi
		txt=$(d 9.113.0.203.bl.test TXT)
		if [ "$txt" = '"mxwarden class: 12 of 256 addresses in 203.0.113.0/24 flagged see https://postmaster.example.net/lookup/203.0.113.9"' ]; then
			ok "rbldnsd 203.0.113.9: TXT $txt (rbldnsd put the queried address in the URL)"
		else
			bad "rbldnsd 203.0.113.9: TXT '$txt'"
		fi
		a=$(d 9.100.51.198.bl.test A)
		if [ "$a" = 127.0.0.3 ]; then ok "rbldnsd 198.51.100.9 (defer): A $a"; else bad "rbldnsd 198.51.100.9: A '$a', want 127.0.0.3"; fi
		s=$(dstatus 200.100.51.198.bl.test)
		if [ "$s" = NXDOMAIN ]; then ok "rbldnsd allowed 198.51.100.200: NXDOMAIN"; else bad "rbldnsd 198.51.100.200: status '$s', want NXDOMAIN"; fi
		q6=$(python3 -c "import ipaddress;print(ipaddress.ip_address('2001:db8:5::1').reverse_pointer[:-len('.ip6.arpa')])")
		a=$(d "$q6.bl6.test" A)
		if [ "$a" = 127.0.0.2 ]; then ok "rbldnsd6 2001:db8:5::1: A $a"; else bad "rbldnsd6 2001:db8:5::1: A '$a', want 127.0.0.2"; fi
		txt=$(d "$q6.bl6.test" TXT)
		case "$txt" in *"lookup/2001:db8:5::1\"") ok "rbldnsd6 TXT $txt" ;; *) bad "rbldnsd6 TXT '$txt'" ;; esac
		q6=$(python3 -c "import ipaddress;print(ipaddress.ip_address('2001:db8:6::1').reverse_pointer[:-len('.ip6.arpa')])")
		s=$(dstatus "$q6.bl6.test")
		if [ "$s" = NXDOMAIN ]; then ok "rbldnsd6 2001:db8:6::1: NXDOMAIN"; else bad "rbldnsd6 2001:db8:6::1: '$s', want NXDOMAIN"; fi
		hok=0
		for i in $(seq 1 "$nh"); do
			o3=$(((i - 1) / 200)) o4=$(((i - 1) % 200 + 1))
			txt=$(d "$o4.$o3.18.198.hbl.test" TXT)
			case "$txt" in "\""*" see https://postmaster.example.net/lookup/198.18.$o3.$o4\"") hok=$((hok + 1)) ;; *) echo "  hostile 198.18.$o3.$o4: TXT '$txt'" ;; esac
		done
		if [ "$hok" = "$nh" ]; then ok "rbldnsd hostile zone: $hok TXT answers, each ending in its lookup URL"; else bad "rbldnsd hostile: $hok of $nh"; fi
		s=$(dstatus 1.0.0.0.hbl.test)
		if [ "$s" = NXDOMAIN ]; then ok "rbldnsd hostile zone: 0.0.0.1 not listed"; else bad "rbldnsd hostile: 0.0.0.1 status '$s'"; fi
	fi
fi

echo "emitter consumers: $pass passed, $fail failed, $skip skipped"
[ $fail -gt 0 ] && exit 1
[ $pass -eq 0 ] && exit 77
exit 0

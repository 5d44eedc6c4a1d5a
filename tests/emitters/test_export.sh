#!/usr/bin/env bash
# test_export.sh EMIT_MKDB - `mxwarden export` and the outputs of `mxwarden
# run`, on a database holding the fixture decisions (stored through db/):
#   - export of every format at the fixture's frozen time equals the
#     reviewed golden file (so the database round trip loses nothing),
#   - -o writes atomically and says "unchanged" the second time,
#   - usage errors exit 2, a missing database exits 1 without creating it,
#   - `mxwarden run` writes each [output] at start and rewrites it when a
#     decision expires, writes an [output] added before a SIGHUP; with
#     [rules] dry_run only manual decisions.
set -u
mkdb=$1
: "${MXWARDEN:?}" "${MXW_SOURCE:?}"
dir=$(mktemp -d /tmp/mxw-export.XXXXXX)
run_pid=
cleanup() {
	[ -n "$run_pid" ] && kill "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "PASS: $*"; }

cat >"$dir/conf.ini" <<'INI'
[safety]
protected_networks = 10.0.0.0/8, ::1
allow = 198.51.100.200
[web]
lookup_url = https://postmaster.example.net/lookup/$ip
INI
fixnow=1798800000
"$mkdb" "$dir/fix.db" $fixnow || { echo "FAIL: emit_mkdb"; exit 1; }
for f in ipset nft iptables ip6tables postfix postscreen rbldnsd rbldnsd6 plain json; do
	if MXWARDEN_NOW=@$fixnow MXWARDEN_NOW_FROZEN=1 "$MXWARDEN" export --format $f -c "$dir/conf.ini" \
		--db "$dir/fix.db" >"$dir/$f.out" 2>"$dir/err"; then
		if cmp -s "$dir/$f.out" "$MXW_SOURCE/tests/emitters/golden/$f"; then
			ok "export --format $f equals the golden file"
		else
			bad "export --format $f differs from golden/$f:"
			diff "$MXW_SOURCE/tests/emitters/golden/$f" "$dir/$f.out" | head -20
		fi
	else
		bad "export --format $f: $(cat "$dir/err")"
	fi
done

# -o: atomic, then unchanged
export MXWARDEN_NOW=@$fixnow MXWARDEN_NOW_FROZEN=1
"$MXWARDEN" export --format postfix -c "$dir/conf.ini" --db "$dir/fix.db" -o "$dir/pf" 2>"$dir/err" &&
	grep -q "written (" "$dir/err" && cmp -s "$dir/pf" "$MXW_SOURCE/tests/emitters/golden/postfix" &&
	ok "export -o writes the file" || bad "export -o: $(cat "$dir/err")"
chmod 600 "$dir/pf"
ino=$(stat -c %i "$dir/pf")
"$MXWARDEN" export --format postfix -c "$dir/conf.ini" --db "$dir/fix.db" -o "$dir/pf" 2>"$dir/err" &&
	grep -q "unchanged" "$dir/err" && [ "$(stat -c %i "$dir/pf")" = "$ino" ] &&
	ok "export -o again: unchanged, not rewritten" || bad "export -o again: $(cat "$dir/err")"
[ "$(ls -A "$dir" | grep -c '^\.')" = 0 ] && ok "no temp file left" || bad "temp files left: $(ls -A "$dir")"
unset MXWARDEN_NOW MXWARDEN_NOW_FROZEN

# errors
"$MXWARDEN" export -c "$dir/conf.ini" --db "$dir/fix.db" >/dev/null 2>"$dir/err"
[ $? = 2 ] && grep -q "format is required" "$dir/err" && ok "no --format: exit 2" || bad "no --format: $(cat "$dir/err")"
"$MXWARDEN" export --format exim --db "$dir/fix.db" >/dev/null 2>"$dir/err"
[ $? = 2 ] && grep -q "unknown format 'exim'" "$dir/err" && ok "unknown format: exit 2" || bad "unknown format: $(cat "$dir/err")"
"$MXWARDEN" export --format plain --db "$dir/none/x.db" >/dev/null 2>"$dir/err"
[ $? = 1 ] && [ ! -e "$dir/none" ] && ok "missing database: exit 1, nothing created ($(head -c 120 "$dir/err"))" || bad "missing db: $(cat "$dir/err")"

# run: the outputs are written at start and rewritten on expiry
now=$(date +%s)
"$mkdb" "$dir/run.db" "$now" 3 || { echo "FAIL: emit_mkdb run"; exit 1; }
cat >>"$dir/conf.ini" <<INI
[output list]
format = plain
path = $dir/list.txt
[output access]
format = postfix
path = $dir/access.cidr
reload = /bin/sh -c "echo reloaded >> $dir/reloads"
INI
"$MXWARDEN" run -c "$dir/conf.ini" --db "$dir/run.db" --listen 127.0.0.1:0 >"$dir/run.log" 2>&1 &
run_pid=$!
seen=0
for _ in $(seq 50); do
	if grep -q '^198.51.100.99/32$' "$dir/list.txt" 2>/dev/null; then seen=1; break; fi
	sleep 0.1
done
[ $seen = 1 ] && ok "run wrote the plain output with the short decision" || bad "run: no list.txt with 198.51.100.99: $(tail -5 "$dir/run.log")"
gone=0
for _ in $(seq 100); do
	if [ -f "$dir/list.txt" ] && ! grep -q '^198.51.100.99/32$' "$dir/list.txt"; then gone=1; break; fi
	sleep 0.1
done
[ $gone = 1 ] && ok "run rewrote the output when the decision expired" || bad "run: 198.51.100.99 still listed after its expiry"
grep -q "^203.0.113.0/24	554 5.7.1 mxwarden class:" "$dir/access.cidr" && ok "run wrote the postfix output" || bad "run: access.cidr: $(cat "$dir/access.cidr" 2>&1 | head -3)"
# SIGHUP: a new [output] section is written without a restart
printf '[output hup]\nformat = plain\npath = %s\n' "$dir/hup.txt" >>"$dir/conf.ini"
kill -HUP "$run_pid"
hup=0
for _ in $(seq 50); do
	if grep -q '^203.0.113.0/24$' "$dir/hup.txt" 2>/dev/null; then hup=1; break; fi
	sleep 0.1
done
[ $hup = 1 ] && grep -q "SIGHUP: new output hup" "$dir/run.log" && ok "SIGHUP: the new output is written" ||
	bad "SIGHUP: no hup.txt: $(grep SIGHUP "$dir/run.log" | head -3)"
kill "$run_pid"
wait "$run_pid"
st=$?
run_pid=
[ $st = 0 ] && ok "run stopped cleanly" || bad "run exit status $st: $(tail -5 "$dir/run.log")"
n=$(wc -l <"$dir/reloads" 2>/dev/null || echo 0)
[ "$n" -ge 2 ] && ok "run ran the reload command after each rewrite ($n times)" || bad "reloads: $n, want >= 2; $(grep -i reload "$dir/run.log" | head -3)"

# [rules] dry_run: the outputs carry manual decisions only
EMIT_MKDB_MANUAL=198.51.100.7/32 "$mkdb" "$dir/dry.db" "$now" || { echo "FAIL: emit_mkdb dry"; exit 1; }
{
	printf '[rules]\ndry_run = true\n[output list]\nformat = plain\npath = %s\n' "$dir/dry.txt"
} >"$dir/dry.ini"
"$MXWARDEN" run -c "$dir/dry.ini" --db "$dir/dry.db" --listen 127.0.0.1:0 >"$dir/dry.log" 2>&1 &
run_pid=$!
for _ in $(seq 50); do [ -s "$dir/dry.txt" ] && break; sleep 0.1; done
kill "$run_pid"; wait "$run_pid"; run_pid=
[ "$(cat "$dir/dry.txt" 2>/dev/null)" = "198.51.100.7/32" ] && ok "dry run: only the manual decision is written" || bad "dry run wrote: $(cat "$dir/dry.txt" 2>&1 | head -3)"
exit $fail

/*
 * main.c - the entry point: global flags (--help, --version) and the
 * subcommand table with every command's usage text. Each subcommand lives
 * in its own cmd_*.c file and is listed here by the issue that builds it.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "db/db.h"
#include "emitters/emitters.h"

/* The list of export formats, from the emitters' registry. */
static void export_formats(struct buf *out)
{
	buf_appends(out, "\nformats (F): ");
	emit_format_names(out);
	buf_appendc(out, '\n');
}

/*
 * Every command's usage, once: the synopsis (several forms separated by
 * '\n'), a one-line summary (`mxwarden --help`), and the flags, each with
 * an example (`mxwarden COMMAND --help`). Usage errors print the synopsis,
 * --help all of it.
 */
#define DBFLAGS                                                                                     \
	"  -c, --config FILE    the configuration        -c /etc/mxwarden/mxwarden.conf\n"          \
	"  -d, --db PATH        the database (default: [storage] db, else " CONFIG_DEFAULT_DB ")\n" \
	"                                                --db /srv/mxwarden/mxwarden.db\n"
static const struct cli_cmd commands[] = {
    {"check-config", cmd_check_config, "[-c FILE] [-v]\n--keys[=markdown|tsv]",
     "check a configuration file, report every error",
     "  -c, --config FILE   the file to check (default: the built-in defaults)\n"
     "                      mxwarden check-config -c /etc/mxwarden/mxwarden.conf\n"
     "  -v, --verbose       print the effective configuration, every key with its value, and the\n"
     "                      networks the MTA trusts with where each came from\n"
     "                      mxwarden check-config -c mxwarden.conf -v | less\n"
     "      --keys[=F]      print every key with its type, default, bounds and meaning: Markdown\n"
     "                      tables (the README's), or tsv (one key a line)\n"
     "                      mxwarden check-config --keys=tsv | grep '^rules'\n"
     "Every mistake in one pass, as FILE:LINE: message, then the warnings (missing followed files,\n"
     "relative paths, a loopback lookup_url, decisions that reach no blocklist); exit 1 on any error.\n",
     NULL},
    {"parse", cmd_parse,
     "[-c FILE] [--format auto|postfix|exim|sendmail] [--stats] [--quiet] [--show-unparsed] [FILE|-]...",
     "print the events of mail log lines as JSON Lines",
     "  -c, --config FILE      [parser NAME] rules and [collector] timezone      -c mxwarden.conf\n"
     "  -f, --format F         the log's MTA, or auto (default) for each line    --format exim\n"
     "  -s, --stats            counts of events and unparsed lines by reason, to stderr\n"
     "                         mxwarden parse --stats --quiet /var/log/mail.log\n"
     "  -q, --quiet            no events on stdout (with --stats: a benchmark)\n"
     "      --show-unparsed    the lines that gave no event, with the reason, to stderr\n"
     "                         mxwarden parse --show-unparsed --quiet mail.log 2>&1 | head\n"
     "FILE - or none reads standard input: tail -n 100 /var/log/mail.log | mxwarden parse\n"
     "The event schema is in docs/events.md.\n",
     NULL},
    {"stats", cmd_stats, "[-c FILE] [--db PATH] [--json]",
     "what the database holds (and whether it is sound)",
     DBFLAGS
     "  -j, --json           one JSON object instead of text     mxwarden stats --json | jq .events\n"
     "Files with their offsets and lines read, events by kind and category, unparsed lines, decisions,\n"
     "the database's size and its write-ahead log's apart, and PRAGMA quick_check's verdict (a damaged\n"
     "database: exit 1, with how to recover). Opened read-only.\n",
     NULL},
    {"check-db", cmd_check_db, "[-c FILE] [--db PATH] [--full]",
     "check the database (PRAGMA quick_check, --full: integrity_check)",
     DBFLAGS
     "  -f, --full           integrity_check: also compares every index with its table (slower)\n"
     "                       mxwarden check-db --full --db /var/lib/mxwarden/mxwarden.db\n"
     "Read-only: it may run beside the daemon. Exit 0 when sound; 1 when damaged (the problems, then\n"
     "how to recover: move the file aside, rebuild it from the logs with import) or unreadable.\n",
     NULL},
    {"run", cmd_run,
     "[-c CONF] [--db PATH] [--follow FILE]... [--listen ADDR:PORT] [--syslog-listen ADDR:PORT]\n"
     " [--replay FILE [--replay-rate N]] [--format F] [--poll] [--poll-ms N] [--allow-root] [-v]",
     "follow the logs in the foreground: parse, store, judge",
     DBFLAGS "  -f, --follow FILE           a file or glob to follow, besides [collector] follow\n"
	     "                              --follow /var/log/mail.log --follow '/var/log/exim4/mainlog*'\n"
	     "  -l, --listen ADDR:PORT      the dashboard and API          --listen 127.0.0.1:8025\n"
	     "      --syslog-listen ADDR:PORT  receive syslog (UDP and TCP)  --syslog-listen 127.0.0.1:5514\n"
	     "      --replay FILE           append FILE to var/replay.log with time stamps set to now,\n"
	     "                              looping, and follow it (a demonstration)\n"
	     "                              --replay data/sample-mail.log\n"
	     "      --replay-rate N         lines per second of --replay (default 50)   --replay-rate 200\n"
	     "  -F, --format F              auto, postfix, exim or sendmail   --format postfix\n"
	     "      --poll, --poll-ms N     poll the files instead of inotify, every N ms (>= 10)\n"
	     "                              --poll-ms 500\n"
	     "      --db-fast               no fsync at commit (tests and benchmarks only)\n"
	     "      --allow-root            run as root under systemd (INVOCATION_ID set), which is\n"
	     "                              refused without it; as root elsewhere a warning is printed\n"
	     "                              mxwarden run -c /etc/mxwarden/mxwarden.conf --allow-root\n"
	     "  -v, --verbose               debug messages\n"
	     "SIGTERM or SIGINT commits the open batch and stops; SIGHUP reloads the configuration.\n"
	     "It warns at start (and on SIGHUP) when decisions reach no blocklist.\n"
	     "Under systemd (Type=notify) it reports READY, a STATUS line and the watchdog.\n",
     NULL},
    {"import", cmd_import, "[-c FILE] [--format F] [--db PATH] [-q] [--no-pipeline] FILE...|-",
     "read old logs (plain, .gz, stdin) into the database",
     DBFLAGS "  -F, --format F       auto, postfix, exim or sendmail     --format exim\n"
	     "  -q, --quiet          no progress line                   mxwarden import -q mail.log.1\n"
	     "      --no-pipeline    write SQLite on the parsing thread (benchmarks and tests)\n"
	     "      --db-fast        no fsync at commit (tests and benchmarks only)\n"
	     "Example: mxwarden import /var/log/mail.log.2.gz /var/log/mail.log.1 /var/log/mail.log\n"
	     "A file read before (by its fingerprint, also renamed or compressed) is read only past its\n"
	     "stored offset: importing it again adds nothing. A file of which no line is a mail log line\n"
	     "is refused (exit 1): \"not a mail log (0 of N lines understood)\".\n",
     NULL},
    {"lookup", cmd_lookup,
     "ADDRESS|PREFIX|IP:PORT|[IPV6]|NAME[IP]|E-MAIL|DOMAIN [-c FILE] [--db PATH] [--json]\n"
     "--id N [-c FILE] [--db PATH] [--json]",
     "is it blocked, since when, and why",
     "  QUERY                an address, a prefix, or as a log writes it:\n"
     "                       mxwarden lookup 203.0.113.7            mxwarden lookup 203.0.113.0/24\n"
     "                       mxwarden lookup 203.0.113.7:25         mxwarden lookup '[2001:db8::1]'\n"
     "                       mxwarden lookup 'unknown[203.0.113.7]' mxwarden lookup user@example.com\n"
     "                       mxwarden lookup example.com  (a sender domain: the clients seen with it)\n"
     "  -i, --id N           a decision by its number (mxwarden decisions)    mxwarden lookup --id "
     "42\n" DBFLAGS "  -j, --json           the answer as JSON (what /api/v1/lookup gives)\n"
     "                       mxwarden lookup --json 203.0.113.7\n"
     "The state: blocked (a blocklist file holds it), partly_blocked, decided_not_enforced (and why),\n"
     "allowed, clean (seen N connections, M delivered) or never_seen; -c names the blocklists to read.\n",
     NULL},
    {"block", cmd_block, "PREFIX --for DURATION --reason TEXT [--response R] [-c FILE] [--db PATH]",
     "block an address or network by hand",
     "  PREFIX               an address or a network with its host bits zero   203.0.113.0/24\n"
     "  -f, --for DURATION   how long, with its unit: 90s, 10m, 2h, 7d, 2w      --for 2d\n"
     "  -r, --reason TEXT    why (recorded with your user name)     --reason 'spam run, ticket 4711'\n"
     "  -R, --response R     observe, defer, reject or drop (default)          --response reject\n" DBFLAGS
     "Blocking a prefix blocked by hand already makes that block last longer (no second decision).\n"
     "A running daemon picks it up within a second.\n",
     NULL},
    {"unblock", cmd_unblock, "PREFIX --reason TEXT [-c FILE] [--db PATH]", "end the decisions on a prefix",
     "  PREFIX               the decisions on it and inside it end            198.51.100.0/24\n"
     "  -r, --reason TEXT    why (recorded with your user name)     --reason 'customer called'\n" DBFLAGS,
     NULL},
    {"allow", cmd_allow, "PREFIX --for DURATION --reason TEXT [-c FILE] [--db PATH]",
     "let an address or network through for a while, whatever is decided",
     "  PREFIX               an address or a network                           192.0.2.25\n"
     "  -f, --for DURATION   how long, with its unit                           --for 30d\n"
     "  -r, --reason TEXT    why (recorded with your user name)  --reason 'partner relay, ticket "
     "812'\n" DBFLAGS
     "No decision blocks it meanwhile; decisions in force on it are left out of the blocklists.\n"
     "mxwarden unallow PREFIX --reason TEXT ends it.\n",
     NULL},
    {"unallow", cmd_unallow, "PREFIX --reason TEXT [-c FILE] [--db PATH]", "end the allows on a prefix",
     "  PREFIX               the allows on it and inside it end                192.0.2.25\n"
     "  -r, --reason TEXT    why (recorded with your user name)     --reason 'contract ended'\n" DBFLAGS,
     NULL},
    {"decisions", cmd_decisions,
     "[--active | --since DURATION] [--rule R] [--scope ip|class] [--manual] [--json] [-c FILE] [--db PATH]",
     "list the decisions (and the allows made by hand): what, since when, until, who, why",
     "  -a, --active         the decisions in force (the default)            mxwarden decisions\n"
     "  -s, --since DURATION those made in the last DURATION, ended or not   --since 7d\n"
     "  -r, --rule R         one rule: manual, harvest, retry, relay, auth, policy, ...   --rule harvest\n"
     "  -S, --scope S        ip or class                                     --scope class\n"
     "      --manual         only those made by hand                         --manual\n"
     "  -j, --json           an array of objects (id, prefix, scope, rule, response, since, until,\n"
     "                       ended_at, by, events, reason)     mxwarden decisions --json | jq "
     "'.[].prefix'\n" DBFLAGS "An allow made by hand is listed with its id as A<N> and the response allow.\n",
     NULL},
    {"export", cmd_export, "--format F [-c FILE] [--db PATH] [-o FILE]",
     "write one blocklist (ipset, nft, postfix, rbldnsd, json, ...) of the active decisions",
     "  -f, --format F       the blocklist's format (the list below)         --format postfix\n"
     "  -o, --output FILE    replace FILE atomically, only when its bytes change (default: stdout)\n"
     "                       mxwarden export --format ipset -o /var/lib/mxwarden/ipset\n"
     "  -c, --config FILE    [safety] and the selection of the first [output] of that format\n"
     "                       -c /etc/mxwarden/mxwarden.conf\n"
     "  -d, --db PATH        the database (default: [storage] db, else " CONFIG_DEFAULT_DB ")\n"
     "                       --db /srv/mxwarden/mxwarden.db\n"
     "Without [web] lookup_url the texts carry no URL.\n",
     export_formats},
    {"report", cmd_report,
     "digest [--since DURATION | --from TIME [--to TIME]] [--top N]\n"
     " [--format text|json|html] [-o FILE] [-c FILE] [--db PATH]\n"
     "evidence ADDRESS|PREFIX [--lines N] [--no-redact]\n"
     " [--format text|json|html] [-o FILE] [-c FILE] [--db PATH]",
     "the abuse digest of a period, or the evidence report for a network",
     "  digest                 the abuse digest of a period (default: the last 24 hours)\n"
     "                         mxwarden report digest --since 7d\n"
     "      --since DURATION   the period up to now: 90s, 10m, 2h, 7d         --since 1d\n"
     "      --from TIME, --to TIME   the period, RFC 3339     --from 2026-11-01T00:00:00Z\n"
     "      --top N            offenders listed (1..1000, default 20)         --top 50\n"
     "  evidence               the evidence report for a network, for its abuse desk\n"
     "                         mxwarden report evidence 203.0.113.0/24\n"
     "      --lines N          log lines quoted at most (1..100000, default 200)   --lines 50\n"
     "      --no-redact        keep our users' addresses and AUTH names in the quoted lines\n"
     "  -f, --format F         text (default), json or html (a standalone page)   --format html\n"
     "  -o, --output FILE      write FILE (mode 0640) instead of stdout       -o report.html\n" DBFLAGS
     "The evidence report redacts our users' addresses and AUTH names unless --no-redact.\n",
     NULL},
    {"abuse-report", cmd_abuse_report,
     "[--since DURATION | --from TIME [--to TIME]] --out DIR [-c FILE] [--db PATH]\n"
     "--list [-c FILE] [--db PATH]",
     "XARF reports to the offenders' abuse contacts (sent with [abuse] smtp)",
     "      --since DURATION   the period up to now: 90s, 10m, 2h, 7d (default 1d)   --since 1d\n"
     "      --from TIME, --to TIME   the period, RFC 3339     --from 2026-11-01T00:00:00Z\n"
     "  -o, --out DIR          write one XARF report per offending prefix into DIR (and send\n"
     "                         it through [abuse] smtp when set)   --out /var/lib/mxwarden/abuse\n"
     "      --list             print what was written and sent (the outbox) as JSON\n"
     "                         mxwarden abuse-report --list | jq length\n" DBFLAGS
     "A report is sent once: the outbox in the database remembers it. [abuse] in -c names the\n"
     "contacts, RDAP and the reporter.\n",
     NULL},
    {"load", cmd_load, "[-c CONF] FILE", "load a blocklist into the firewall (root: mxwarden-load@.service)",
     "  FILE                the blocklist: the path of one [output]    /var/lib/mxwarden/ipset\n"
     "  -c, --config CONF   the configuration: the [output] whose path is FILE gives the format\n"
     "                      and the set name                  -c /etc/mxwarden/mxwarden.conf\n"
     "Example: mxwarden load -c /etc/mxwarden/mxwarden.conf /var/lib/mxwarden/ipset\n"
     "Run as root by mxwarden-load@.service when the daemon replaces FILE. The file must pass the\n"
     "format's checks and name no set, table or chain but the configured one; the checked bytes\n"
     "go to ipset restore, nft -f, iptables-restore --noflush or ip6tables-restore --noflush\n"
     "(a Postfix table: postfix reload). The outcome is written to FILE.status, which the daemon\n"
     "shows as the output's reload result. Exit 0 when loaded, 1 otherwise.\n",
     NULL},
};

static const struct cli_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < MXW_ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	BUG("no command '%s' in the table", name);
}

/* "usage: mxwarden NAME FORM" for each form of the synopsis; a line that
 * starts with a blank continues the form above it. */
static void print_synopsis(FILE *fp, const struct cli_cmd *c)
{
	int indent = (int)strlen("usage: mxwarden ") + (int)strlen(c->name);
	const char *p = c->args;
	for (int k = 0;; k++) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);
		if (*p == ' ')
			fprintf(fp, "%*s%.*s\n", indent, "", n, p);
		else
			fprintf(fp, "%s mxwarden %s %.*s\n", k ? "      " : "usage:", c->name, n, p);
		if (!nl)
			break;
		p = nl + 1;
	}
}

int cli_help(const char *name)
{
	const struct cli_cmd *c = find_cmd(name);
	print_synopsis(stdout, c);
	struct buf b = BUF_INIT;
	buf_printf(&b, "\n%s.\n\n%s", c->summary, c->help);
	if (c->help_more)
		c->help_more(&b);
	fputs(buf_str(&b), stdout);
	buf_free(&b);
	return 0;
}

static void usage(FILE *fp)
{
	fprintf(fp, "usage: mxwarden [--help] [--version] COMMAND [ARGS]\n\n"
		    "mxwarden follows MTA logs, finds senders that misbehave (per IP and per IP\n"
		    "class) and writes blocklists for firewalls, MTAs and DNSBLs.\n\ncommands:\n");
	for (size_t i = 0; i < MXW_ARRAY_LEN(commands); i++)
		fprintf(fp, "  %-13s %s\n", commands[i].name, commands[i].summary);
	fprintf(fp, "\nEvery command takes -c FILE (an INI configuration); "
		    "'mxwarden COMMAND --help' shows its flags.\n");
}

int cli_usage_error(const char *name, const char *fmt, ...)
{
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		fprintf(stderr, "mxwarden %s: ", name);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	print_synopsis(stderr, find_cmd(name));
	return 2;
}

int cli_parse_prefix(const char *name, const char *s, bool strict, struct prefix *out)
{
	if (prefix_parse(out, s, strlen(s), strict) == 0)
		return 0;
	struct buf b = BUF_INIT;
	buf_append_printable(&b, s, strlen(s));
	char why[160];
	prefix_explain(s, strlen(s), strict, why, sizeof why);
	int rc = cli_usage_error(name, "'%s': %s", buf_str(&b), why);
	buf_free(&b);
	return rc;
}

struct db *cli_open_ro(const char *name, const char *conf_path, const char *db_path, struct config *c)
{
	if (engine_config_load(c, conf_path) < 0) {
		config_free(c);
		return NULL;
	}
	char err[512];
	struct db *db = db_open(db_path ? db_path : c->db_path, DB_RO, err, sizeof err);
	if (!db) {
		fprintf(stderr, "mxwarden %s: %s\n", name, err);
		config_free(c);
	}
	return db;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("mxwarden %s\n", MXWARDEN_VERSION);
		return 0;
	}
	for (size_t i = 0; i < MXW_ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].name, argv[1]) == 0) {
			optind = 1; /* getopt starts after the subcommand name */
			return commands[i].run(argc - 1, argv + 1);
		}
	if (argv[1][0] == '-')
		fprintf(stderr, "mxwarden: unknown option '%s'\n", argv[1]);
	else
		fprintf(stderr, "mxwarden: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}

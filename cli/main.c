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
 * '\n'), a one-line summary (`mxwarden --help`), and the flags (`mxwarden
 * COMMAND --help`). Usage errors print the synopsis, --help all of it.
 */
static const struct cli_cmd commands[] = {
    {"check-config", cmd_check_config, "[-c FILE] [-v]\n--keys[=markdown|tsv]",
     "check a configuration file, report every error",
     "  -c, --config FILE   the file to check (default: the built-in defaults)\n"
     "  -v, --verbose       print the effective configuration, every key with its value,\n"
     "                      and the networks the MTA trusts with where each came from\n"
     "      --keys[=F]      print every key with its value, default, bounds and meaning:\n"
     "                      Markdown tables (the README's), or tsv (one key a line)\n"
     "Every mistake is reported as FILE:LINE: message; the exit status is 1 when there is any.\n",
     NULL},
    {"parse", cmd_parse,
     "[-c FILE] [--format auto|postfix|exim|sendmail] [--stats] [--quiet] [--show-unparsed] [FILE|-]...",
     "print the events of mail log lines as JSON Lines",
     "  -c, --config FILE      [parser NAME] rules and [collector] timezone from FILE\n"
     "  -f, --format F         the log's MTA, or auto (default) to recognise each line\n"
     "  -s, --stats            counts of events and of unparsed lines by reason, to stderr\n"
     "  -q, --quiet            no events on stdout (with --stats: a benchmark)\n"
     "      --show-unparsed    the lines that gave no event, with the reason, to stderr\n"
     "FILE - or none reads standard input. The event schema is in docs/events.md.\n",
     NULL},
    {"stats", cmd_stats, "[-c FILE] [--db PATH] [--json]",
     "what the database holds (and whether it is sound)",
     "  -c, --config FILE   the configuration ([storage] db)\n"
     "  -d, --db PATH       the database (default: the configuration's)\n"
     "  -j, --json          one JSON object instead of text\n"
     "Files with their offsets and lines read, events by kind and category, unparsed lines by\n"
     "reason, decisions, size, after PRAGMA quick_check: a damaged database is said to be so, with\n"
     "how to recover, and the exit status is 1. The database is opened read-only.\n",
     NULL},
    {"check-db", cmd_check_db, "[-c FILE] [--db PATH] [--full]",
     "check the database (PRAGMA quick_check, --full: integrity_check)",
     "  -c, --config FILE   the configuration ([storage] db)\n"
     "  -d, --db PATH       the database (default: the configuration's)\n"
     "  -f, --full          integrity_check: also compares every index with its table (slower)\n"
     "Read-only, so it may run beside the daemon. Exit 0 when sound, 1 when damaged (the\n"
     "problems, then how to recover) or when it cannot be read.\n",
     NULL},
    {"run", cmd_run,
     "[-c CONF] [--db PATH] [--follow FILE]... [--listen ADDR:PORT] [--syslog-listen ADDR:PORT]\n"
     " [--replay FILE [--replay-rate N]] [--format F] [--poll] [--poll-ms N] [--allow-root] [-v]",
     "follow the logs in the foreground: parse, store, judge",
     "  -c, --config CONF           the configuration (SIGHUP reads it again)\n"
     "  -d, --db PATH               the database (default: [storage] db)\n"
     "  -f, --follow FILE           a file or glob to follow, on top of [collector] follow\n"
     "  -l, --listen ADDR:PORT      the dashboard and API (default: [web] listen)\n"
     "      --syslog-listen ADDR:PORT  receive syslog over UDP and TCP on this port\n"
     "      --replay FILE           append FILE to var/replay.log with time stamps set to now,\n"
     "                              looping, and follow it (a demonstration)\n"
     "      --replay-rate N         lines per second of --replay (default 50)\n"
     "  -F, --format F              auto, postfix, exim or sendmail (default: [collector] format)\n"
     "      --poll                  poll the files instead of inotify\n"
     "      --poll-ms N             the polling interval in milliseconds (>= 10)\n"
     "      --db-fast               no fsync at commit (tests and benchmarks only)\n"
     "      --allow-root            run as root under systemd (INVOCATION_ID set), which is\n"
     "                              refused without it; as root elsewhere a warning is printed\n"
     "  -v, --verbose               debug messages\n"
     "SIGTERM or SIGINT commits the open batch and stops; SIGHUP reloads the configuration.\n"
     "Under systemd (Type=notify) it reports READY, a STATUS line and the watchdog.\n",
     NULL},
    {"import", cmd_import, "[-c FILE] [--format F] [--db PATH] [-q] [--no-pipeline] FILE...|-",
     "read old logs (plain, .gz, stdin) into the database",
     "  -c, --config FILE   the configuration\n"
     "  -d, --db PATH       the database (default: [storage] db)\n"
     "  -F, --format F      auto, postfix, exim or sendmail (default: [collector] format)\n"
     "  -q, --quiet         no progress line\n"
     "      --no-pipeline   write SQLite on the parsing thread (benchmarks and tests)\n"
     "      --db-fast       no fsync at commit (tests and benchmarks only)\n"
     "A file read before (by its fingerprint, also renamed or compressed) is read only past\n"
     "its stored offset: importing it again adds nothing.\n",
     NULL},
    {"lookup", cmd_lookup, "ADDRESS|PREFIX [-c FILE] [--db PATH] [--json]",
     "is it blocked, since when, and why",
     "  -c, --config FILE   the configuration\n"
     "  -d, --db PATH       the database (default: [storage] db)\n"
     "  -j, --json          the answer as JSON (what the API's /api/v1/lookup gives)\n",
     NULL},
    {"block", cmd_block, "PREFIX --for DURATION --reason TEXT [--response R] [-c FILE] [--db PATH]",
     "block an address or network by hand",
     "  -f, --for DURATION   how long: 90s, 10m, 2h, 7d\n"
     "  -r, --reason TEXT    why (recorded in the audit trail with your user name)\n"
     "  -R, --response R     observe, defer, reject or drop (default)\n"
     "  -c, --config FILE    the configuration ([safety]: protected networks are refused)\n"
     "  -d, --db PATH        the database (default: [storage] db)\n"
     "A running daemon picks the decision up within a second.\n",
     NULL},
    {"unblock", cmd_unblock, "PREFIX --reason TEXT [-c FILE] [--db PATH]", "end the decisions on a prefix",
     "  -r, --reason TEXT    why (recorded in the audit trail with your user name)\n"
     "  -c, --config FILE    the configuration\n"
     "  -d, --db PATH        the database (default: [storage] db)\n",
     NULL},
    {"export", cmd_export, "--format F [-c FILE] [--db PATH] [-o FILE]",
     "write one blocklist (ipset, nft, postfix, rbldnsd, json, ...) of the active decisions",
     "  -f, --format F      the blocklist's format (below)\n"
     "  -o, --output FILE   replace FILE atomically, only when its bytes change (default: stdout)\n"
     "  -c, --config FILE   [safety] and the selection of the first [output] of that format\n"
     "  -d, --db PATH       the database (default: [storage] db)\n",
     export_formats},
    {"report", cmd_report,
     "digest [--since DURATION | --from TIME [--to TIME]] [--top N]\n"
     " [--format text|json|html] [-o FILE] [-c FILE] [--db PATH]\n"
     "evidence ADDRESS|PREFIX [--lines N] [--no-redact]\n"
     " [--format text|json|html] [-o FILE] [-c FILE] [--db PATH]",
     "the abuse digest of a period, or the evidence report for a network",
     "  digest                 the abuse digest of a period (default: the last 24 hours)\n"
     "      --since DURATION   the period up to now: 90s, 10m, 2h, 7d\n"
     "      --from TIME, --to TIME   the period, RFC 3339\n"
     "      --top N            offenders listed (1..1000, default 20)\n"
     "  evidence               the evidence report for a network, for its abuse desk\n"
     "      --lines N          log lines quoted at most (1..100000, default 200)\n"
     "      --no-redact        keep local recipients' addresses in the quoted lines\n"
     "  -f, --format F         text (default), json or html (a standalone page)\n"
     "  -o, --output FILE      write to FILE instead of stdout\n"
     "  -c, --config FILE      the configuration\n"
     "  -d, --db PATH          the database (default: [storage] db)\n",
     NULL},
    {"abuse-report", cmd_abuse_report,
     "[--since DURATION | --from TIME [--to TIME]] --out DIR [-c FILE] [--db PATH]\n"
     "--list [-c FILE] [--db PATH]",
     "XARF reports to the offenders' abuse contacts (sent with [abuse] smtp)",
     "      --since DURATION   the period up to now: 90s, 10m, 2h, 7d (default 1d)\n"
     "      --from TIME, --to TIME   the period, RFC 3339\n"
     "  -o, --out DIR          write one XARF report per offending prefix into DIR (and send\n"
     "                         it through [abuse] smtp when set)\n"
     "      --list             print what was written and sent (the outbox) as JSON\n"
     "  -c, --config FILE      the configuration ([abuse]: contacts, RDAP, the reporter)\n"
     "  -d, --db PATH          the database (default: [storage] db)\n"
     "A report is sent once: the outbox in the database remembers it.\n",
     NULL},
    {"load", cmd_load, "[-c CONF] FILE", "load a blocklist into the firewall (root: mxwarden-load@.service)",
     "  -c, --config CONF   the configuration: the [output] whose path is FILE gives the format\n"
     "                      and the set name\n"
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
	int rc = cli_usage_error(name, "'%s' is not an IP address or prefix%s", buf_str(&b),
				 strict ? " (host bits must be zero)" : "");
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

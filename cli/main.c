/*
 * main.c - the entry point: global flags (--help, --version) and the
 * subcommand table. Each subcommand lives in its own cmd_*.c file and is
 * listed here by the issue that builds it.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "db/db.h"

static const struct cli_cmd commands[] = {
    {"check-config", cmd_check_config, "[-c FILE] [-v]", "check a configuration file, report every error"},
    {"parse", cmd_parse, "[-c FILE] [--format auto|postfix|exim|sendmail] [--stats] [--quiet] [FILE|-]...",
     "print the events of mail log lines as JSON Lines"},
    {"stats", cmd_stats, "[-c FILE] [--db PATH] [--json]", "what the database holds"},
    {"run", cmd_run,
     "[-c CONF] [--db PATH] [--follow FILE]... [--listen ADDR:PORT] [--syslog-listen ADDR:PORT] [--replay "
     "FILE [--replay-rate N]]",
     "follow the logs in the foreground: parse, store, judge"},
    {"import", cmd_import, "[-c FILE] [--format F] [--db PATH] [-q] FILE...|-",
     "read old logs (plain, .gz, stdin) into the database"},
    {"lookup", cmd_lookup,
     "ADDRESS|PREFIX|IP:PORT|[IPV6]|NAME[IP]|E-MAIL|DOMAIN [-c FILE] [--db PATH] [--json] | --id N",
     "is it blocked, since when, and why"},
    {"block", cmd_block, "PREFIX --for DURATION --reason TEXT [--response R] [-c FILE] [--db PATH]",
     "block an address or network by hand"},
    {"unblock", cmd_unblock, "PREFIX --reason TEXT [-c FILE] [--db PATH]", "end the decisions on a prefix"},
    {"allow", cmd_allow, "PREFIX --for DURATION --reason TEXT [-c FILE] [--db PATH]",
     "let an address or network through for a while, whatever is decided"},
    {"unallow", cmd_unallow, "PREFIX --reason TEXT [-c FILE] [--db PATH]", "end the allows on a prefix"},
    {"decisions", cmd_decisions,
     "[--active | --since DURATION] [--rule R] [--scope ip|class] [--manual] [--json] [-c FILE] [--db PATH]",
     "list the decisions (and the allows made by hand): what, since when, until, who, why"},
    {"export", cmd_export, "--format F [-c FILE] [--db PATH] [-o FILE]",
     "write one blocklist (ipset, nft, postfix, rbldnsd, json, ...) of the active decisions"},
    {"report", cmd_report, "digest|evidence ... [--format text|json|html] [-o FILE] [-c FILE] [--db PATH]",
     "the abuse digest of a period, or the evidence report for a network"},
    {"abuse-report", cmd_abuse_report,
     "[--since DURATION | --from TIME [--to TIME]] --out DIR | --list [-c FILE] [--db PATH]",
     "XARF reports to the offenders' abuse contacts (sent with [abuse] smtp)"},
};

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

int cli_help(const char *name)
{
	for (size_t i = 0; i < MXW_ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			printf("usage: mxwarden %s %s\n\n%s.\n", name, commands[i].args, commands[i].summary);
	return 0;
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
	for (size_t i = 0; i < MXW_ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			fprintf(stderr, "usage: mxwarden %s %s\n", name, commands[i].args);
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

/*
 * mtaconf.h - the clients the MTA itself trusts, read from the MTA's own
 * configuration: Postfix's mynetworks (`postconf [-c DIR] -xh mynetworks`)
 * and Exim's relay_from_hosts (`exim [-C FILE] -n -bP +relay_from_hosts`).
 * They are our own users (an office, a webmail host, the machines the MTA
 * relays for), so [safety] mta_trusted (default auto) allow-lists them: they
 * are never judged as strangers.
 *
 * Where it sits: above base/ (prefixes, the configuration), beside
 * parsers/. cli/ calls mtaconf_read() at start and on SIGHUP, never in the
 * hot path; the aggregator and the emitters only see the result, the
 * configuration's trusted_nets, beside allow and allow_files.
 *
 * It must never allow-list more than the MTA trusts. Both MTAs take the
 * first pattern that matches, so an exclusion ("!192.0.2.1") is cut out of
 * the networks listed after it. A pattern that cannot be read exactly (a
 * hash: table, a host name, an expansion, a named list) is skipped with a
 * warning that names it; after an exclusion that cannot be read, nothing
 * more is taken from that list (its extent is unknown). Networks wider than
 * /8 (IPv4) or /16 (IPv6) are skipped with a warning (an MTA that trusts
 * them is an open relay, and an allow list that wide would disarm
 * mxwarden). It never runs a shell: programs get an argv, and their output
 * is bounded (4 MiB) and timed (10 s).
 */
#ifndef MXWARDEN_MTACONF_H
#define MXWARDEN_MTACONF_H

#include "base/base.h"

/* At most this many trusted networks are taken (the allow list is searched
 * linearly when a decision is made and when a blocklist is written). */
#define MTACONF_MAX 4096

/*
 * Parse a Postfix address list in mynetworks syntax (what `postconf -h`
 * prints): patterns separated by commas or blanks; "a.b.c.d/len",
 * "[ipv6]/len", bare addresses; "/file/name" (read, same syntax, '#'
 * comments); "cidr:/file" (read: "pattern result" lines, if/endif blocks);
 * "!pattern" exclusions. Other tables and host names are skipped with a
 * warning. Each network is appended to nets with, at the same index in
 * src, what (e.g. "postfix mynetworks"), followed by the file or table it
 * came from. Warnings ("what: ...") are appended to warn.
 */
void mtaconf_postfix_list(const char *value, const char *what, struct prefix_list *nets, struct strv *src,
			  struct strv *warn);

/*
 * Parse an Exim host list (what `exim -n -bP +NAME` prints): items
 * separated by ':' ("::" is a literal colon, so "::::1" is ::1) or by the
 * character after a leading '<' ("<; 127.0.0.1 ; ::1"); addresses and
 * CIDRs; "!" exclusions; "*" (everything). Host names, lookups ("a;b"),
 * named lists ("+name"), "@[]" and expansions ("$") are skipped with a
 * warning. Output as for mtaconf_postfix_list().
 */
void mtaconf_exim_hostlist(const char *value, const char *what, struct prefix_list *nets, struct strv *src,
			   struct strv *warn);

/*
 * Read what [safety] mta_trusted asks for into c->trusted_nets and
 * c->trusted_src (replacing what they held). "auto" reads each MTA whose
 * program is installed and whose configuration is readable and says
 * nothing about the others; "postfix" or "exim" named explicitly must be
 * readable: a missing program or a failing command is appended to err.
 * Warnings (skipped patterns) are appended to warn. Returns 0, or -1 when
 * err gained a message (c->trusted_nets then holds what could be read).
 */
int mtaconf_read(struct config *c, struct strv *warn, struct strv *err);

#endif

/*
 * postfix.c - Postfix messages: smtpd (under any service name), postscreen,
 * cleanup (through the queue-id map) and the processes that tell nothing
 * about a client (qmgr, smtp, local, anvil statistics, ...).
 *
 * The client is always the first "name[ip]" at the position smtpd writes it
 * ("connect from X", "reject: RCPT from X: ", "warning: X: SASL", "client=X"),
 * or postscreen's "[ip]:port". Never scan the rest of the line for brackets:
 * HELO names, addresses and reply texts can hold "unknown[192.0.2.66]".
 * cleanup's text comes from the message itself, so its client comes only
 * from the earlier "QID: client=" line of the same queue id.
 */
#include "parsers/internal.h"

/* "name[ip]" or "[ip]", optional ":port". Advances *pp past it. */
static int pf_client(struct parser *p, const char **pp, const char *end, struct event *ev, int *reason)
{
	const char *q = *pp, *name = q;
	while (q < end && *q != '[' && *q != ' ' && *q != ']')
		q++;
	const char *nend = q;
	struct span ip;
	int r = scan_bracket(&q, end, &ip);
	if (r != PARSE_R_NONE) {
		*reason = r;
		return -1;
	}
	if (ev_set_ip(p, ev, ip.p, ip.n) < 0) {
		*reason = PARSE_R_BAD_ADDRESS;
		return -1;
	}
	scan_opt_port(&q, end, false, &ev->port);
	if (nend > name && !(nend - name == 7 && memcmp(name, "unknown", 7) == 0))
		ev->rdns = mkspan(name, nend);
	*pp = q;
	return 0;
}

/* A command word (letters and '-'), an optional " (N bytes)" or, before
 * Postfix 2.x ended, " (approximately N bytes)" (after DATA and BDAT),
 * then " from ". */
static int pf_cmd_from(const char **pp, const char *end, enum ev_stage *st)
{
	const char *q = *pp, *w = q;
	while (q < end && ((*q >= 'A' && *q <= 'Z') || *q == '-'))
		q++;
	const char *we = q, *r = SKIP(q, end, " (");
	if (r) {
		const char *a = SKIP(r, end, "approximately ");
		const char *d = a ? a : r;
		while (d < end && *d >= '0' && *d <= '9')
			d++;
		const char *b = d > (a ? a : r) ? SKIP(d, end, " bytes)") : NULL;
		if (b)
			q = b;
	}
	const char *f = SKIP(q, end, " from ");
	if (we == w || !f)
		return -1;
	*st = stage_of_command(w, (size_t)(we - w));
	*pp = f;
	return 0;
}

/* A Postfix queue id followed by ": ": its span in *qid and the position
 * after the ": ", or NULL. */
static const char *pf_qid(const char *q, const char *end, struct span *qid)
{
	const char *r = q;
	while (r < end && r - q < 20 &&
	       ((*r >= '0' && *r <= '9') || (*r >= 'A' && *r <= 'Z') || (*r >= 'a' && *r <= 'z')))
		r++;
	const char *after = r - q >= 5 ? SKIP(r, end, ": ") : NULL;
	if (after)
		*qid = mkspan(q, r);
	return after;
}

/*
 * The tail of a smtpd reject: "CODE DSN text; from=<f> to=<t> proto=P helo=<h>".
 * Postfix writes the fields in that order; the addresses can hold anything, so
 * the helo is found from the end and the rest before it.
 */
static void pf_reject_tail(const char *q, const char *end, struct event *ev)
{
	parse_code(&q, end, ev);
	parse_dsn(&q, end, ev);
	/* the suffix starts at "; from=<", or "; to=<" / "; proto=" when the
	 * command had no sender (CONNECT, HELO, VRFY, ETRN) */
	const char *sfx = FIND(q, end, "; from=<");
	const char *fs = sfx ? SKIP(sfx, end, "; from=<") : NULL;
	if (!sfx)
		sfx = FIND(q, end, "; to=<");
	if (!sfx)
		sfx = FIND(q, end, "; proto=");
	ev->text = mkspan(q, sfx ? sfx : end);
	if (!sfx)
		return;
	const char *helo = RFIND(sfx, end, " helo=<");
	const char *fend = helo ? helo : end;
	if (helo) {
		/* helo=<...> ends the line. Postfix turns ' <>()\";@' in a HELO
		 * into '?', but take the whole field up to the line's final '>'
		 * anyway, so a HELO written by anything else is not cut short. */
		const char *hs = SKIP(helo, end, " helo=<");
		const char *he = end > hs && end[-1] == '>' ? end - 1 : memchr(hs, '>', (size_t)(end - hs));
		ev->helo = mkspan(hs, he ? he : end);
	}
	if (fend > sfx && fend[-1] == ',')
		fend--; /* postscreen separates with ", " */
	const char *proto = RFIND(sfx, fend, " proto=");
	if (proto)
		fend = proto > sfx && proto[-1] == ',' ? proto - 1 : proto;
	const char *to = RFIND(fs ? fs : sfx, fend, " to=<");
	if (to) {
		const char *ts = SKIP(to, fend, " to=<");
		const char *te = fend > ts && fend[-1] == '>' ? fend - 1 : fend;
		ev->to = mkspan(ts, te);
		if (to > sfx && to[-1] == ',')
			to--;
		fend = to;
	}
	if (fs) {
		const char *fe = fend > fs && fend[-1] == '>' ? fend - 1 : fend;
		ev->from = mkspan(fs, fe < fs ? fs : fe);
	}
}

/* A count "N" of the disconnect statistics (stops growing past 60000:
 * the caller caps at 65535). */
static unsigned pf_count(const char **pp, const char *end)
{
	const char *q = *pp;
	unsigned v = 0;
	while (q < end && *q >= '0' && *q <= '9' && v < 60000)
		v = v * 10 + (unsigned)(*q++ - '0');
	*pp = q;
	return v;
}

/* Parse "ehlo=1 mail=1 rcpt=0/1 data=0/1 commands=2/4". */
static void pf_stats(const char *q, const char *end, struct cmd_stats *st)
{
	while (q < end) {
		while (q < end && *q == ' ')
			q++;
		const char *k = q;
		while (q < end && *q != '=' && *q != ' ')
			q++;
		if (q >= end || *q != '=')
			break;
		size_t kl = (size_t)(q - k);
		q++;
		unsigned ok = pf_count(&q, end), tot = ok;
		if (q < end && *q == '/') {
			q++;
			tot = pf_count(&q, end);
		}
		uint16_t *o = NULL, *t = NULL;
		if ((kl == 4 && (!memcmp(k, "ehlo", 4) || !memcmp(k, "helo", 4)))) {
			o = &st->ehlo_ok;
			t = &st->ehlo_total;
		} else if (kl == 4 && !memcmp(k, "mail", 4)) {
			o = &st->mail_ok;
			t = &st->mail_total;
		} else if (kl == 4 && !memcmp(k, "rcpt", 4)) {
			o = &st->rcpt_ok;
			t = &st->rcpt_total;
		} else if (kl == 4 && (!memcmp(k, "data", 4) || !memcmp(k, "bdat", 4))) {
			o = &st->data_ok;
			t = &st->data_total;
		} else if (kl == 4 && !memcmp(k, "auth", 4)) {
			o = &st->auth_ok;
			t = &st->auth_total;
		} else if (kl == 8 && !memcmp(k, "commands", 8)) {
			o = &st->cmds_ok;
			t = &st->cmds_total;
		}
		if (o) {
			*o = (uint16_t)MXW_MIN(65535u, *o + ok);
			*t = (uint16_t)MXW_MIN(65535u, *t + tot);
			st->present = true;
		}
		while (q < end && *q != ' ')
			q++;
	}
}

/* The address Postfix prints in a DNS warning ("2001:db8::1: Name or
 * service not known" ends at ": "): into ev; returns its end or NULL. */
static const char *pf_bare_ip(struct parser *p, const char *q, const char *end, struct event *ev)
{
	const char *r = q;
	while (r < end && ((*r >= '0' && *r <= '9') || (*r >= 'a' && *r <= 'f') || (*r >= 'A' && *r <= 'F') ||
			   *r == ':' || *r == '.'))
		r++;
	if (r > q && r[-1] == ':' && (r == end || *r == ' '))
		r--; /* the ':' of ": reason" */
	if (r < end && *r != ':' && *r != ' ')
		return NULL;
	if (ev_set_ip(p, ev, q, (size_t)(r - q)) < 0)
		return NULL;
	return r;
}

/*
 * smtpd's reverse-DNS warnings, a signal (no_rdns note), not a refusal:
 * "hostname NAME does not resolve to address IP[: reason]",
 * "IP: address not listed for hostname NAME",
 * "IP: hostname NAME verification failed: reason".
 * The name comes from the DNS and holds no blank (Postfix checks it).
 */
static int pf_rdns_warning(struct parser *p, const char *q, const char *end, struct event *ev)
{
	const char *h = SKIP(q, end, "hostname "), *r;
	if (h) {
		const char *ne = memchr(h, ' ', (size_t)(end - h));
		if (!ne || !(r = SKIP(ne, end, " does not resolve to address ")) ||
		    !pf_bare_ip(p, r, end, ev))
			return 0;
		ev->rdns = mkspan(h, ne);
	} else {
		const char *a = pf_bare_ip(p, q, end, ev);
		if (!a || !(r = SKIP(a, end, ": ")))
			return 0;
		const char *n = SKIP(r, end, "address not listed for hostname ");
		if (!n) {
			n = SKIP(r, end, "hostname ");
			const char *ne = n ? memchr(n, ' ', (size_t)(end - n)) : NULL;
			if (!ne || !SKIP(ne, end, " verification failed")) {
				ev->has_ip = false;
				return 0;
			}
			ev->rdns = mkspan(n, ne);
		} else {
			const char *ne = memchr(n, ' ', (size_t)(end - n));
			ev->rdns = mkspan(n, ne ? ne : end);
		}
		q = r;
	}
	ev->kind = EV_NOTE;
	ev->stage = ST_CONNECT;
	ev->cat = CAT_NO_RDNS;
	ev->text = mkspan(q, end);
	return 1;
}

static int pf_smtpd_warning(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	const char *r;
	if ((r = SKIP(q, end, "non-SMTP command from ")) != NULL) {
		if (pf_client(p, &r, end, ev, reason) < 0)
			return -1;
		ev->kind = EV_PROTOCOL;
		ev->stage = ST_OTHER;
		ev->cat = CAT_NON_SMTP;
		const char *t = SKIP(r, end, ": ");
		if (t)
			ev->text = mkspan(t, end);
		return 1;
	}
	if ((r = SKIP(q, end, "Illegal address syntax from ")) != NULL) {
		if (pf_client(p, &r, end, ev, reason) < 0)
			return -1;
		ev->kind = EV_PROTOCOL;
		ev->stage = ST_OTHER;
		ev->cat = CAT_OTHER;
		ev->text = mkspan(r, end);
		return 1;
	}
	/* "<What> limit exceeded: N from name[ip] for service S": the prefix
	 * is Postfix's own text. */
	const char *le = end - q > 64 ? q + 64 : end;
	const char *lim = FIND(q, le, " limit exceeded: ");
	if (lim) {
		r = SKIP(lim, end, " limit exceeded: ");
		while (r < end && *r >= '0' && *r <= '9')
			r++;
		if (!(r = SKIP(r, end, " from ")))
			return 0;
		if (pf_client(p, &r, end, ev, reason) < 0)
			return -1;
		ev->kind = EV_REJECT;
		ev->stage = ST_CONNECT;
		ev->cat = CAT_RATE_LIMITED;
		ev->code = 421; /* smtpd answers these with 421 and does not log it */
		ev->text = mkspan(q, SKIP(lim, end, " limit exceeded"));
		return 1;
	}
	/* "name[ip]: SASL LOGIN authentication failed: reason[, sasl_username=u]" */
	r = q;
	int rr;
	struct event save = *ev;
	if (pf_client(p, &r, end, ev, &rr) == 0 && (r = SKIP(r, end, ": SASL ")) != NULL) {
		const char *af = FIND(r, end - r > 40 ? r + 40 : end, " authentication failed");
		const char *t = af ? SKIP(af, end, " authentication failed") : NULL;
		if (!t) {
			*ev = save;
			return 0;
		}
		const char *c = SKIP(t, end, ": ");
		if (c)
			t = c;
		ev->kind = EV_AUTH_FAILURE;
		ev->stage = ST_AUTH;
		ev->cat = CAT_AUTH;
		ev->code = 535;
		const char *u = RFIND(t, end, ", sasl_username=");
		ev->text = mkspan(t, u ? u : end);
		if (u)
			ev->user = mkspan(SKIP(u, end, ", sasl_username="), end);
		return 1;
	}
	*ev = save;
	if (pf_rdns_warning(p, q, end, ev))
		return 1;
	*ev = save;
	return 0; /* other warnings (DNS, TLS, config) are not about one client */
}

/* The smtpd messages "WHAT after CMD from name[ip]...": one shape, the
 * stage by the command. */
static const struct pf_after {
	const char *lit;
	size_t n;
	enum ev_kind kind;
	enum ev_category cat;
	int16_t code;	  /* -1 = none */
	const char *text; /* fixed text; NULL = what follows ": " */
} pf_afters[] = {
    {LIT("lost connection after "), EV_LOST, CAT_NONE, -1, "lost connection"},
    {LIT("timeout after "), EV_LOST, CAT_NONE, -1, "timeout"},
    {LIT("too many errors after "), EV_PROTOCOL, CAT_TOO_MANY_ERRORS, 421, "too many errors"},
    {LIT("improper command pipelining after "), EV_PROTOCOL, CAT_PIPELINING, -1, NULL},
};

/* One of pf_afters at q: 1 (event), -1 (*reason), 0 (none of them). */
static int pf_after(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	const struct pf_after *a = NULL;
	const char *r = NULL;
	for (size_t i = 0; i < MXW_ARRAY_LEN(pf_afters) && !r; i++)
		if ((r = skip_lit(q, end, pf_afters[i].lit, pf_afters[i].n)) != NULL)
			a = &pf_afters[i];
	if (!r)
		return 0;
	if (pf_cmd_from(&r, end, &ev->stage) < 0 || pf_client(p, &r, end, ev, reason) < 0) {
		if (!*reason)
			*reason = PARSE_R_UNKNOWN_MESSAGE;
		return -1;
	}
	ev->kind = a->kind;
	ev->cat = a->cat;
	ev->code = a->code;
	const char *t = SKIP(r, end, ": ");
	if (a->text)
		ev->text = (struct span){a->text, (uint32_t)strlen(a->text)};
	else if (t)
		ev->text = mkspan(t, end);
	return 1;
}

static int pf_smtpd(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	const char *r;
	int rc;
	switch (*q) {
	case 'c':
		if ((r = SKIP(q, end, "connect from ")) != NULL) {
			if (pf_client(p, &r, end, ev, reason) < 0)
				return -1;
			ev->kind = EV_CONNECT;
			ev->stage = ST_CONNECT;
			return 1;
		}
		break;
	case 'd':
		if ((r = SKIP(q, end, "disconnect from ")) != NULL) {
			if (pf_client(p, &r, end, ev, reason) < 0)
				return -1;
			ev->kind = EV_DISCONNECT;
			ev->stage = ST_OTHER;
			pf_stats(r, end, &ev->stats);
			return 1;
		}
		break;
	case 'l':
	case 't':
	case 'i':
		if ((rc = pf_after(p, q, end, ev, reason)) != 0)
			return rc;
		break;
	case 'w':
		if ((r = SKIP(q, end, "warning: ")) != NULL)
			return pf_smtpd_warning(p, r, end, ev, reason);
		break;
	default: break;
	}
	/* "NOQUEUE: action: ..." or "QID: action: ..." / "QID: client=..." */
	if (!(r = SKIP(q, end, "NOQUEUE: "))) {
		if (!(r = pf_qid(q, end, &ev->queue_id))) {
			/* TLS notes ("Anonymous TLS connection established from",
			 * "SSL_accept error from"), proxy and config messages: not
			 * evidence about a client */
			return 0;
		}
		const char *c = SKIP(r, end, "client=");
		if (c) {
			if (pf_client(p, &c, end, ev, reason) < 0)
				return -1;
			ev->kind = EV_ACCEPT;
			ev->stage = ST_MAIL;
			const char *u = FIND_AFTER(c, end, ", sasl_username=");
			if (u) {
				const char *ue = FIND(u, end, ", ");
				ev->user = mkspan(u, ue ? ue : end);
				ev->auth_ok = true;
			}
			qmap_put(p, ev->queue_id, &ev->ip, ev->port);
			return 1;
		}
	}
	/* "lost connection after ..." and the like after a queue id (older
	 * Postfix) */
	if ((rc = pf_after(p, r, end, ev, reason)) != 0)
		return rc;
	/* reject_warning: what a rule in warn_if_reject would have refused
	 * (the site tests it): a note with the stage, code, DSN and category
	 * the rejection would have had */
	const char *a;
	enum ev_kind kind = EV_REJECT;
	if (!(a = SKIP(r, end, "reject: ")) && !(a = SKIP(r, end, "milter-reject: ")) &&
	    !(a = SKIP(r, end, "defer: "))) {
		if (!(a = SKIP(r, end, "reject_warning: ")))
			return 0; /* warn, discard, hold, filter, redirect, message-id... */
		kind = EV_NOTE;
	}
	if (pf_cmd_from(&a, end, &ev->stage) < 0) {
		*reason = PARSE_R_UNKNOWN_MESSAGE;
		return -1;
	}
	if (pf_client(p, &a, end, ev, reason) < 0)
		return -1;
	const char *t = SKIP(a, end, ": ");
	if (!t) {
		*reason = PARSE_R_TRUNCATED;
		return -1;
	}
	ev->kind = kind;
	pf_reject_tail(t, end, ev);
	ev->cat = category_of_postfix(ev->text.p, ev->text.p + ev->text.n, ev->dsn, ev->stage);
	return 1;
}

static int pf_postscreen(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	static const struct {
		const char *lit;
		size_t n;
		enum ev_kind kind;
		enum ev_category cat;
		bool has_from;	 /* "from [ip]:port" follows somewhere in Postfix's own prefix */
		bool rank;	 /* "N for [ip]:port" */
		bool after_text; /* the text is what follows the client */
	} t[] = {
	    {LIT("CONNECT from "), EV_CONNECT, CAT_NONE, false, false, false},
	    {LIT("PREGREET "), EV_PROTOCOL, CAT_PREGREET, true, false, true},
	    {LIT("HANGUP "), EV_LOST, CAT_NONE, true, false, true},
	    {LIT("COMMAND PIPELINING from "), EV_PROTOCOL, CAT_PIPELINING, false, false, true},
	    {LIT("NON-SMTP COMMAND from "), EV_PROTOCOL, CAT_NON_SMTP, false, false, true},
	    {LIT("BARE NEWLINE from "), EV_PROTOCOL, CAT_OTHER, false, false, false},
	    {LIT("COMMAND TIME LIMIT from "), EV_PROTOCOL, CAT_OTHER, false, false, true},
	    {LIT("COMMAND COUNT LIMIT from "), EV_PROTOCOL, CAT_OTHER, false, false, true},
	    {LIT("COMMAND LENGTH LIMIT from "), EV_PROTOCOL, CAT_OTHER, false, false, true},
	    /* a DNSBL score: postscreen logs a refusal, if any, on its own line */
	    {LIT("DNSBL rank "), EV_NOTE, CAT_DNSBL, false, true, false},
	    {LIT("DENYLISTED "), EV_REJECT, CAT_CLIENT_POLICY, false, false, false},
	    {LIT("BLACKLISTED "), EV_REJECT, CAT_CLIENT_POLICY, false, false, false},
	    {LIT("PASS NEW "), EV_CONNECT, CAT_NONE, false, false, false},
	    {LIT("PASS OLD "), EV_CONNECT, CAT_NONE, false, false, false},
	    {LIT("DISCONNECT "), EV_DISCONNECT, CAT_NONE, false, false, false},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(t); i++) {
		const char *r = skip_lit(q, end, t[i].lit, t[i].n);
		if (!r)
			continue;
		if (t[i].has_from) {
			/* "PREGREET 26 after 0.02 from [ip]:port: ..." - numbers and
			 * "after" only before the client */
			const char *lim = end - r > 40 ? r + 40 : end;
			const char *f = FIND(r, lim, " from [");
			if (!f) {
				*reason = PARSE_R_UNKNOWN_MESSAGE;
				return -1;
			}
			for (const char *c = r; c < f; c++)
				if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == ' ' || *c == '-' ||
				      *c == '+' || (*c >= 'a' && *c <= 'z'))) {
					*reason = PARSE_R_UNKNOWN_MESSAGE;
					return -1;
				}
			r = SKIP(f, end, " from ");
		} else if (t[i].rank) {
			while (r < end && *r >= '0' && *r <= '9')
				r++;
			if (!(r = SKIP(r, end, " for "))) {
				*reason = PARSE_R_UNKNOWN_MESSAGE;
				return -1;
			}
		}
		if (r >= end || *r != '[') {
			*reason = PARSE_R_UNKNOWN_MESSAGE;
			return -1;
		}
		if (pf_client(p, &r, end, ev, reason) < 0)
			return -1;
		ev->kind = t[i].kind;
		ev->cat = t[i].cat;
		ev->stage = ST_CONNECT;
		if (t[i].kind == EV_CONNECT && t[i].lit[0] == 'P')
			ev->stage = ST_OTHER; /* PASS NEW/OLD: the same connection */
		ev->text = mkspan(q, q + t[i].n - (t[i].lit[t[i].n - 1] == ' ' ? 1 : 0));
		if (t[i].after_text) {
			const char *c = SKIP(r, end, ": "), *a = SKIP(r, end, " ");
			if (c)
				ev->text = mkspan(c, end);
			else if (a && SKIP(a, end, "after "))
				ev->text = mkspan(a, end);
		}
		return 1;
	}
	const char *r = SKIP(q, end, "NOQUEUE: reject: ");
	if (r) {
		if (pf_cmd_from(&r, end, &ev->stage) < 0 || pf_client(p, &r, end, ev, reason) < 0) {
			if (!*reason)
				*reason = PARSE_R_UNKNOWN_MESSAGE;
			return -1;
		}
		const char *t2 = SKIP(r, end, ": ");
		if (!t2) {
			*reason = PARSE_R_TRUNCATED;
			return -1;
		}
		ev->kind = EV_REJECT;
		pf_reject_tail(t2, end, ev);
		const char *te = ev->text.p + ev->text.n;
		if (FIND(ev->text.p, te, "too many connections") ||
		    FIND(ev->text.p, te, "all server ports busy"))
			ev->cat = CAT_RATE_LIMITED;
		else
			ev->cat = category_of_postfix(ev->text.p, te, ev->dsn, ev->stage);
		return 1;
	}
	return 0; /* cache cleanup, WHITELISTED/ALLOWLISTED, warnings */
}

/* cleanup: "QID: reject: header ... from X; from=<> ...: 5.7.1 text" - the
 * client comes from the queue-id map, never from this text. */
static int pf_cleanup(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	struct span qid;
	const char *r = pf_qid(q, end, &qid), *a;
	if (!r)
		return 0;
	bool milter = false;
	if ((a = SKIP(r, end, "reject: ")) == NULL) {
		if ((a = SKIP(r, end, "milter-reject: ")) == NULL)
			return 0;
		milter = true;
	}
	const struct qmap_entry *qe = qmap_get(p, qid);
	if (!qe)
		return 0; /* the client= line was not seen (or was evicted) */
	ev->ip = qe->ip;
	ev->has_ip = true;
	ipaddr_class(&ev->ip, &p->classes, &ev->cls);
	ev->port = qe->port;
	ev->queue_id = qid;
	ev->kind = EV_REJECT;
	ev->stage = ST_END_OF_DATA;
	if (milter) {
		/* "END-OF-MESSAGE from X: 5.7.1 text; from=<> to=<> proto helo" */
		const char *c = FIND_AFTER(a, end, ": ");
		if (c) {
			const char *w = a;
			while (w < end && ((*w >= 'A' && *w <= 'Z') || *w == '-'))
				w++;
			ev->stage = stage_of_command(a, (size_t)(w - a));
			pf_reject_tail(c, end, ev);
		} else {
			ev->text = mkspan(a, end);
		}
	} else {
		/* the text after the last "helo=<...>: " is the configured reply */
		const char *h = RFIND(a, end, " helo=<");
		const char *t = h ? memchr(h, '>', (size_t)(end - h)) : NULL;
		t = t ? SKIP(t, end, ">: ") : NULL;
		if (t) {
			parse_code(&t, end, ev);
			parse_dsn(&t, end, ev);
			ev->text = mkspan(t, end);
		} else {
			ev->text = mkspan(a, end);
		}
		if (SKIP(a, end, "header ") || SKIP(a, end, "body "))
			ev->stage = ST_DATA;
	}
	ev->cat = category_of_postfix(ev->text.p, ev->text.p + ev->text.n, ev->dsn, ev->stage);
	(void)reason;
	return 1;
}

int postfix_parse(struct parser *p, const struct envelope *e, struct event *ev, int *reason)
{
	struct span pg = e->program;
	const char *svc = pg.p + pg.n;
	while (svc > pg.p && svc[-1] != '/')
		svc--;
	struct span service = mkspan(svc, pg.p + pg.n);
	const char *q = e->msg, *end = e->end;
	if (q >= end) {
		*reason = PARSE_R_TRUNCATED;
		return -1;
	}
	if (span_is(service, "smtpd"))
		return pf_smtpd(p, q, end, ev, reason);
	if (span_is(service, "postscreen"))
		return pf_postscreen(p, q, end, ev, reason);
	if (span_is(service, "cleanup"))
		return pf_cleanup(p, q, end, ev, reason);
	return 0; /* qmgr, smtp, local, anvil, master, pickup, ...: nothing about a client */
}

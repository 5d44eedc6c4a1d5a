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

/* A command word (letters and '-'), an optional " (N bytes)" (after DATA
 * and BDAT), then " from ". */
static int pf_cmd_from(const char **pp, const char *end, enum ev_stage *st)
{
	const char *q = *pp, *w = q;
	while (q < end && ((*q >= 'A' && *q <= 'Z') || *q == '-'))
		q++;
	const char *we = q;
	if (HAS(q, end, " (")) {
		const char *r = q + 2;
		while (r < end && *r >= '0' && *r <= '9')
			r++;
		if (r > q + 2 && HAS(r, end, " bytes)"))
			q = r + 7;
	}
	if (we == w || !HAS(q, end, " from "))
		return -1;
	*st = stage_of_command(w, (size_t)(we - w));
	*pp = q + 6;
	return 0;
}

/* A Postfix queue id followed by ": ". Returns the id length or 0. */
static size_t pf_qid(const char *q, const char *end)
{
	const char *r = q;
	while (r < end && r - q < 20 &&
	       ((*r >= '0' && *r <= '9') || (*r >= 'A' && *r <= 'Z') || (*r >= 'a' && *r <= 'z')))
		r++;
	if (r - q < 5 || !HAS(r, end, ": "))
		return 0;
	return (size_t)(r - q);
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
	bool has_from = sfx != NULL;
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
		const char *hs = helo + 7;
		const char *he = end > hs && end[-1] == '>' ? end - 1 : memchr(hs, '>', (size_t)(end - hs));
		ev->helo = mkspan(hs, he ? he : end);
	}
	if (fend > sfx && fend[-1] == ',')
		fend--; /* postscreen separates with ", " */
	const char *proto = RFIND(sfx, fend, " proto=");
	if (proto)
		fend = proto > sfx && proto[-1] == ',' ? proto - 1 : proto;
	const char *fs = has_from ? sfx + 8 : NULL;
	const char *to = RFIND(has_from ? fs : sfx, fend, " to=<");
	if (to) {
		const char *ts = to + 5;
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

static int pf_smtpd_warning(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	if (HAS(q, end, "non-SMTP command from ")) {
		q += 22;
		if (pf_client(p, &q, end, ev, reason) < 0)
			return -1;
		ev->kind = EV_PROTOCOL;
		ev->stage = ST_OTHER;
		ev->cat = CAT_NON_SMTP;
		if (HAS(q, end, ": "))
			ev->text = mkspan(q + 2, end);
		return 1;
	}
	if (HAS(q, end, "Illegal address syntax from ")) {
		q += 28;
		if (pf_client(p, &q, end, ev, reason) < 0)
			return -1;
		ev->kind = EV_PROTOCOL;
		ev->stage = ST_OTHER;
		ev->cat = CAT_OTHER;
		ev->text = mkspan(q, end);
		return 1;
	}
	/* "<What> limit exceeded: N from name[ip] for service S": the prefix
	 * is Postfix's own text. */
	const char *le = end - q > 64 ? q + 64 : end;
	const char *lim = FIND(q, le, " limit exceeded: ");
	if (lim) {
		const char *r = lim + 17;
		while (r < end && *r >= '0' && *r <= '9')
			r++;
		if (!HAS(r, end, " from "))
			return 0;
		r += 6;
		if (pf_client(p, &r, end, ev, reason) < 0)
			return -1;
		ev->kind = EV_REJECT;
		ev->stage = ST_CONNECT;
		ev->cat = CAT_RATE_LIMITED;
		ev->code = 421; /* smtpd answers these with 421 and does not log it */
		ev->text = mkspan(q, lim + 16);
		return 1;
	}
	/* "name[ip]: SASL LOGIN authentication failed: reason[, sasl_username=u]" */
	const char *r = q;
	int rr;
	struct event save = *ev;
	if (pf_client(p, &r, end, ev, &rr) == 0 && HAS(r, end, ": SASL ")) {
		r += 7;
		const char *af = FIND(r, end - r > 40 ? r + 40 : end, " authentication failed");
		if (!af) {
			*ev = save;
			return 0;
		}
		ev->kind = EV_AUTH_FAILURE;
		ev->stage = ST_AUTH;
		ev->cat = CAT_AUTH;
		ev->code = 535;
		const char *t = af + 22;
		if (HAS(t, end, ": "))
			t += 2;
		const char *u = RFIND(t, end, ", sasl_username=");
		ev->text = mkspan(t, u ? u : end);
		if (u)
			ev->user = mkspan(u + 16, end);
		return 1;
	}
	*ev = save;
	return 0; /* other warnings (DNS, TLS, config) are not about one client */
}

/* The smtpd messages "WHAT after CMD from name[ip]...": one shape, the
 * stage by the command. */
static const struct pf_after {
	const char *lit;
	uint8_t n;
	enum ev_kind kind;
	enum ev_category cat;
	int16_t code;	  /* -1 = none */
	const char *text; /* fixed text; NULL = what follows ": " */
} pf_afters[] = {
    {"lost connection after ", 22, EV_LOST, CAT_NONE, -1, "lost connection"},
    {"timeout after ", 14, EV_LOST, CAT_NONE, -1, "timeout"},
    {"too many errors after ", 22, EV_PROTOCOL, CAT_TOO_MANY_ERRORS, 421, "too many errors"},
    {"improper command pipelining after ", 34, EV_PROTOCOL, CAT_PIPELINING, -1, NULL},
};

static int pf_after(struct parser *p, const struct pf_after *a, const char *q, const char *end,
		    struct event *ev, int *reason)
{
	if (pf_cmd_from(&q, end, &ev->stage) < 0 || pf_client(p, &q, end, ev, reason) < 0) {
		if (!*reason)
			*reason = PARSE_R_UNKNOWN_MESSAGE;
		return -1;
	}
	ev->kind = a->kind;
	ev->cat = a->cat;
	ev->code = a->code;
	if (a->text)
		ev->text = (struct span){a->text, (uint32_t)strlen(a->text)};
	else if (HAS(q, end, ": "))
		ev->text = mkspan(q + 2, end);
	return 1;
}

static int pf_smtpd(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	switch (*q) {
	case 'c':
		if (HAS(q, end, "connect from ")) {
			q += 13;
			if (pf_client(p, &q, end, ev, reason) < 0)
				return -1;
			ev->kind = EV_CONNECT;
			ev->stage = ST_CONNECT;
			return 1;
		}
		break;
	case 'd':
		if (HAS(q, end, "disconnect from ")) {
			q += 16;
			if (pf_client(p, &q, end, ev, reason) < 0)
				return -1;
			ev->kind = EV_DISCONNECT;
			ev->stage = ST_OTHER;
			pf_stats(q, end, &ev->stats);
			return 1;
		}
		break;
	case 'l':
	case 't':
	case 'i':
		for (size_t i = 0; i < MXW_ARRAY_LEN(pf_afters); i++)
			if (has_prefix(q, end, pf_afters[i].lit, pf_afters[i].n))
				return pf_after(p, &pf_afters[i], q + pf_afters[i].n, end, ev, reason);
		break;
	case 'w':
		if (HAS(q, end, "warning: "))
			return pf_smtpd_warning(p, q + 9, end, ev, reason);
		break;
	default: break;
	}
	/* "NOQUEUE: action: ..." or "QID: action: ..." / "QID: client=..." */
	size_t ql;
	if (HAS(q, end, "NOQUEUE: ")) {
		ql = 7;
	} else if ((ql = pf_qid(q, end)) != 0) {
		ev->queue_id = mkspan(q, q + ql);
		const char *r = q + ql + 2;
		if (HAS(r, end, "client=")) {
			r += 7;
			if (pf_client(p, &r, end, ev, reason) < 0)
				return -1;
			ev->kind = EV_ACCEPT;
			ev->stage = ST_MAIL;
			const char *u = FIND(r, end, ", sasl_username=");
			if (u) {
				const char *ue = FIND(u + 16, end, ", ");
				ev->user = mkspan(u + 16, ue ? ue : end);
				ev->auth_ok = true;
			}
			qmap_put(p, ev->queue_id, &ev->ip, ev->port);
			return 1;
		}
	} else {
		/* TLS notes ("Anonymous TLS connection established from",
		 * "SSL_accept error from"), proxy and config messages: not
		 * evidence about a client */
		return 0;
	}
	const char *r = q + ql + 2;
	bool milter = false;
	if (HAS(r, end, "reject: ")) {
		r += 8;
	} else if (HAS(r, end, "milter-reject: ")) {
		r += 15;
		milter = true;
	} else if (HAS(r, end, "defer: ")) {
		r += 7;
	} else {
		return 0; /* warn, discard, hold, filter, redirect, message-id... */
	}
	if (pf_cmd_from(&r, end, &ev->stage) < 0) {
		*reason = PARSE_R_UNKNOWN_MESSAGE;
		return -1;
	}
	if (pf_client(p, &r, end, ev, reason) < 0)
		return -1;
	if (!HAS(r, end, ": ")) {
		*reason = PARSE_R_TRUNCATED;
		return -1;
	}
	ev->kind = EV_REJECT;
	pf_reject_tail(r + 2, end, ev);
	ev->cat = category_of_postfix(ev->text.p, ev->text.p + ev->text.n, ev->dsn);
	if (milter && ev->cat == CAT_OTHER)
		ev->cat = CAT_OTHER;
	return 1;
}

static int pf_postscreen(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	static const struct {
		const char *lit;
		size_t n;
		enum ev_kind kind;
		enum ev_category cat;
		bool has_from; /* "from [ip]:port" follows somewhere in Postfix's own prefix */
	} t[] = {
	    {"CONNECT from ", 13, EV_CONNECT, CAT_NONE, false},
	    {"PREGREET ", 9, EV_PROTOCOL, CAT_PREGREET, true},
	    {"HANGUP ", 7, EV_LOST, CAT_NONE, true},
	    {"COMMAND PIPELINING from ", 24, EV_PROTOCOL, CAT_PIPELINING, false},
	    {"NON-SMTP COMMAND from ", 22, EV_PROTOCOL, CAT_NON_SMTP, false},
	    {"BARE NEWLINE from ", 18, EV_PROTOCOL, CAT_OTHER, false},
	    {"COMMAND TIME LIMIT from ", 24, EV_PROTOCOL, CAT_OTHER, false},
	    {"COMMAND COUNT LIMIT from ", 25, EV_PROTOCOL, CAT_OTHER, false},
	    {"COMMAND LENGTH LIMIT from ", 26, EV_PROTOCOL, CAT_OTHER, false},
	    {"DNSBL rank ", 11, EV_PROTOCOL, CAT_DNSBL, false},
	    {"DENYLISTED ", 11, EV_REJECT, CAT_CLIENT_POLICY, false},
	    {"BLACKLISTED ", 12, EV_REJECT, CAT_CLIENT_POLICY, false},
	    {"PASS NEW ", 9, EV_CONNECT, CAT_NONE, false},
	    {"PASS OLD ", 9, EV_CONNECT, CAT_NONE, false},
	    {"DISCONNECT ", 11, EV_DISCONNECT, CAT_NONE, false},
	};
	for (size_t i = 0; i < MXW_ARRAY_LEN(t); i++) {
		if (!has_prefix(q, end, t[i].lit, t[i].n))
			continue;
		const char *r = q + t[i].n;
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
			r = f + 6;
		} else if (t[i].cat == CAT_DNSBL) {
			while (r < end && *r >= '0' && *r <= '9')
				r++;
			if (!HAS(r, end, " for ")) {
				*reason = PARSE_R_UNKNOWN_MESSAGE;
				return -1;
			}
			r += 5;
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
			ev->stage = ST_OTHER;
		ev->text = mkspan(q, q + t[i].n - (t[i].lit[t[i].n - 1] == ' ' ? 1 : 0));
		if (t[i].has_from || t[i].n > 20) {
			if (HAS(r, end, ": "))
				ev->text = mkspan(r + 2, end);
			else if (HAS(r, end, " after "))
				ev->text = mkspan(r + 1, end);
		}
		return 1;
	}
	if (HAS(q, end, "NOQUEUE: reject: ")) {
		const char *r = q + 17;
		if (pf_cmd_from(&r, end, &ev->stage) < 0 || pf_client(p, &r, end, ev, reason) < 0) {
			if (!*reason)
				*reason = PARSE_R_UNKNOWN_MESSAGE;
			return -1;
		}
		if (!HAS(r, end, ": ")) {
			*reason = PARSE_R_TRUNCATED;
			return -1;
		}
		ev->kind = EV_REJECT;
		pf_reject_tail(r + 2, end, ev);
		const char *te = ev->text.p + ev->text.n;
		if (FIND(ev->text.p, te, "too many connections") ||
		    FIND(ev->text.p, te, "all server ports busy"))
			ev->cat = CAT_RATE_LIMITED;
		else
			ev->cat = category_of_postfix(ev->text.p, te, ev->dsn);
		return 1;
	}
	return 0; /* cache cleanup, WHITELISTED/ALLOWLISTED, warnings */
}

/* cleanup: "QID: reject: header ... from X; from=<> ...: 5.7.1 text" - the
 * client comes from the queue-id map, never from this text. */
static int pf_cleanup(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	size_t ql = pf_qid(q, end);
	if (!ql)
		return 0;
	struct span qid = mkspan(q, q + ql);
	const char *r = q + ql + 2;
	bool milter = false;
	if (HAS(r, end, "reject: ")) {
		r += 8;
	} else if (HAS(r, end, "milter-reject: ")) {
		r += 15;
		milter = true;
	} else {
		return 0;
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
		const char *c = FIND(r, end, ": ");
		if (c) {
			const char *w = r;
			while (w < end && ((*w >= 'A' && *w <= 'Z') || *w == '-'))
				w++;
			ev->stage = stage_of_command(r, (size_t)(w - r));
			pf_reject_tail(c + 2, end, ev);
		} else {
			ev->text = mkspan(r, end);
		}
	} else {
		/* the text after the last "helo=<...>: " is the configured reply */
		const char *h = RFIND(r, end, " helo=<");
		const char *t = h ? memchr(h, '>', (size_t)(end - h)) : NULL;
		if (t && HAS(t, end, ">: ")) {
			t += 3;
			parse_code(&t, end, ev);
			parse_dsn(&t, end, ev);
			ev->text = mkspan(t, end);
		} else {
			ev->text = mkspan(r, end);
		}
		if (HAS(r, end, "header ") || HAS(r, end, "body "))
			ev->stage = ST_DATA;
	}
	ev->cat = category_of_postfix(ev->text.p, ev->text.p + ev->text.n, ev->dsn);
	(void)reason;
	return 1;
}

int postfix_parse(struct parser *p, const struct envelope *e, struct event *ev, int *reason)
{
	struct span pg = e->program;
	const char *svc = pg.p + pg.n;
	while (svc > pg.p && svc[-1] != '/')
		svc--;
	size_t sl = (size_t)(pg.p + pg.n - svc);
	const char *q = e->msg, *end = e->end;
	if (q >= end) {
		*reason = PARSE_R_TRUNCATED;
		return -1;
	}
	if (sl == 5 && memcmp(svc, "smtpd", 5) == 0)
		return pf_smtpd(p, q, end, ev, reason);
	if (sl == 10 && memcmp(svc, "postscreen", 10) == 0)
		return pf_postscreen(p, q, end, ev, reason);
	if (sl == 7 && memcmp(svc, "cleanup", 7) == 0)
		return pf_cleanup(p, q, end, ev, reason);
	return 0; /* qmgr, smtp, local, anvil, master, pickup, ...: nothing about a client */
}

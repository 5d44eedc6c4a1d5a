/*
 * exim.c - Exim mainlog and rejectlog messages, in Exim's own files or
 * through syslog (with or without Exim's own stamp after the tag).
 *
 * The client is the host field Exim writes: "H=name (helo) [ip]:port",
 * "H=(helo) [ip]", "H=[ip]:port", or the same without "H=" after a fixed
 * prefix ("SMTP connection from ", "authenticator failed for "). After it
 * come the fields log_selector adds (" I=[ip]:port", " Ci=N", " X=...",
 * " D=1s", " C=EHLO,...", " F=<sender>"), then the verb.
 *
 * The HELO in parentheses is the client's text: Exim prints it as it came
 * when helo_accept_junk_hosts lets it hold blanks, brackets and parentheses
 * ("H=(x) [192.0.2.66] (y) [203.0.113.109]:4000"). The client is the last
 * bracket before the fixed fields: the first ") [ip]" followed by what the
 * shape writes after its host field (enum ex_tail; a junk HELO's next
 * part, "(y) [ip]", is not that). Text the client chooses after the host
 * field (a sender, a recipient, a set_id) is never searched for the client.
 * Residual risk, only where helo_accept_junk_hosts is set: a HELO that
 * imitates a whole host field and the shape's text after it reads as the
 * client; by default (no blanks in a HELO) that reading cannot occur. Where Exim prints
 * client text before the host field (a quoted command, a sender address),
 * every host field after its marker is parsed and the line is dropped
 * unless all agree.
 *
 * Exim logs no SMTP code for ACL rejections: "rejected" is reported as 550
 * and "temporarily rejected" as 451, the codes Exim sends by default.
 */
#include "parsers/internal.h"

bool exim_dedup_seen(struct parser *p, const struct parser_source *s, const char *msg, const char *end,
		     int64_t ts_us);

/* What may follow a host field: Exim writes the end, ':' (text or a port's
 * end), ',', ')' (closing "(during SMTP connection from HOST)" or
 * "(host=NAME [ip])"), a blank and a field or a verb, or a blank and a
 * parenthesis (" (TCP/IP connection count = 1)", "verify rejected: ...
 * (reason)"). This test only drops candidates that cannot be the host
 * field, so it must accept all that Exim writes: were the real one dropped,
 * a lone imitation would be taken. A candidate inside a junk HELO is
 * followed by the rest of the HELO and then ") [ip]" (the real bracket):
 * so a blank and '(' counts only when no ") [" comes after it. */
static bool ex_field_follows(const char *q, const char *end)
{
	if (q == end || *q == ':' || *q == ',' || *q == ')')
		return true;
	if (*q != ' ' || end - q < 2)
		return false;
	if (q[1] == '[')
		return false;
	if (q[1] == '(')
		return !FIND(q, end, ") [");
	return true;
}

/*
 * The fields log_selector adds after a host field: " I=[ip]:port",
 * " U=ident", " Ci=N", " X=TLS...", " CV=yes", " DN=\"...\"", " D=1s",
 * " C=EHLO,...", " P=esmtp", " S=123", " A=auth:id", and " F=<sender>"
 * (kept in ev->from; the address may hold blanks). Returns the position of
 * the first thing that is not one (a blank before the verb, or ':').
 */
static const char *ex_fields(const char *q, const char *end, struct event *ev)
{
	while (end - q >= 3 && q[0] == ' ') {
		const char *k = q + 1, *r = k;
		while (r < end && r - k < 4 && ((*r >= 'A' && *r <= 'Z') || (*r >= 'a' && *r <= 'z')))
			r++;
		if (r == k || r >= end || *r != '=')
			break;
		const char *v = r + 1, *ve;
		if (r - k == 1 && *k == 'F' && v < end && *v == '<') {
			ve = FIND(v, end, "> ");
			if (!ve)
				ve = end[-1] == '>' ? end - 1 : NULL;
			if (!ve)
				break;
			ev->from = mkspan(v + 1, ve);
			q = ve + 1;
			continue;
		}
		if (v < end && *v == '"') {
			ve = memchr(v + 1, '"', (size_t)(end - v - 1));
			ve = ve ? ve + 1 : end;
		} else {
			ve = memchr(v, ' ', (size_t)(end - v));
			if (!ve)
				ve = end;
		}
		/* a field right before ": text" ("I=[ip]:25: 535 ...") or the ')'
		 * that closes "(during SMTP connection from HOST I=[ip]:25)" */
		if (ve > v && ((ve[-1] == ':' && ve < end) || (ve[-1] == ')' && ve == end)))
			ve--;
		q = ve;
	}
	return q;
}

/* "[ip]" with an optional ":port" (or ".port", Exim before 4.8x for IPv6)
 * at q into ev; returns the position after it, or NULL. */
static const char *ex_addr(struct parser *p, const char *q, const char *end, struct event *ev)
{
	struct span ip;
	if (scan_bracket(&q, end, &ip) != PARSE_R_NONE || ev_set_ip(p, ev, ip.p, ip.n) < 0)
		return NULL;
	ev->port = 0;
	scan_opt_port(&q, end, true, &ev->port);
	return q;
}

/* What a shape writes after its host field and the log_selector fields:
 * a candidate is the host field only when that follows it. A HELO that
 * imitates a host field ("H=(a) [192.0.2.66] x) [ip]") is then followed by
 * the rest of the HELO, not by the shape's fixed text. */
enum ex_tail {
	EXT_ANY,     /* what ex_field_follows allows (arrivals) */
	EXT_VERB,    /* "H=" lines: rejected, sender verify, dropped, RCPT ... */
	EXT_COLON,   /* ": text" */
	EXT_CONN,    /* " (TCP/IP connection count", " closed by ", " lost" */
	EXT_DROPPED, /* " dropped: " */
	EXT_INPUT,   /* the end, " input=" or " next input=" */
	EXT_TEXT,    /* Exim's own message: a blank and a letter, no ") [" after */
	EXT_END,     /* the end of the line */
	EXT_CLOSE,   /* ")" ending the line */
	EXT_PAREN,   /* " (reason)" ending the line, no ") [" after */
	EXT_REFUSED, /* " refused" */
	EXT_SA,	     /* ") for " (SA-Exim's "(host=NAME [ip]) for rcpts") */
};

static bool ex_tail_ok(const char *a, const char *end, enum ex_tail tail)
{
	struct event scratch; /* ex_fields keeps F=; not wanted here */
	const char *f = tail == EXT_ANY || tail == EXT_SA ? a : ex_fields(a, end, &scratch);
	switch (tail) {
	case EXT_ANY: return true;
	case EXT_VERB:
		return SKIP(f, end, " rejected ") || SKIP(f, end, " temporarily rejected ") ||
		       SKIP(f, end, " sender verify ") || SKIP(f, end, " dropped: ") ||
		       SKIP(f, end, " RCPT ") || SKIP(f, end, " incomplete transaction") ||
		       SKIP(f, end, " Warning: ");
	case EXT_COLON: return SKIP(f, end, ": ") != NULL;
	case EXT_CONN:
		return SKIP(f, end, " (TCP/IP connection count") || SKIP(f, end, " closed by ") ||
		       SKIP(f, end, " lost");
	case EXT_DROPPED: return SKIP(f, end, " dropped: ") != NULL;
	case EXT_INPUT: return f == end || SKIP(f, end, " input=") || SKIP(f, end, " next input=");
	case EXT_TEXT:
		return end - f >= 2 && f[0] == ' ' &&
		       ((f[1] >= 'a' && f[1] <= 'z') || (f[1] >= 'A' && f[1] <= 'Z')) && !FIND(f, end, ") [");
	case EXT_END: return f == end;
	case EXT_CLOSE: return f + 1 == end && *f == ')';
	case EXT_PAREN: return SKIP(f, end, " (") && end[-1] == ')' && !FIND(f, end, ") [");
	case EXT_REFUSED: return SKIP(f, end, " refused") != NULL;
	case EXT_SA: return SKIP(f, end, ") for ") != NULL;
	}
	return false;
}

/* A host field at *pp (without "H=") followed by what the shape writes
 * after it (tail). Advances past it (and its port). Returns 0, -1 (no host
 * field) or -2 (host fields, none followed by the shape's text: a shape not
 * known, no event). */
static int ex_host(struct parser *p, const char **pp, const char *end, struct event *ev, enum ex_tail tail)
{
	const char *q = *pp;
	struct span name = SPAN_NULL, helo = SPAN_NULL;
	if (q < end && *q != '[' && *q != '(') {
		const char *n = q;
		while (q < end && *q != ' ' && *q != '[' && *q != '(' && *q != ']' && *q != ')')
			q++;
		if (q >= end || *q != ' ' || q == n)
			return -1;
		name = mkspan(n, q);
		q++;
	}
	struct event got = *ev;
	const char *after = NULL;
	if (q < end && *q == '(') {
		/* the HELO ends at the first ") [ip]" followed by what follows a
		 * host field: the last bracket before the fixed fields */
		const char *hs = q + 1;
		bool addr = false;
		for (const char *r = hs; !after && (r = FIND(r, end, ") [")) != NULL; r++) {
			struct event cand = *ev;
			const char *a = ex_addr(p, SKIP(r, end, ") "), end, &cand);
			addr |= a != NULL;
			if (a && ex_field_follows(a, end) && ex_tail_ok(a, end, tail)) {
				got = cand;
				helo = mkspan(hs, r);
				after = a;
			}
		}
		if (!after)
			return addr ? -2 : -1;
	} else {
		after = ex_addr(p, q, end, &got);
		if (!after)
			return -1;
		if (!ex_field_follows(after, end) || !ex_tail_ok(after, end, tail))
			return -2;
	}
	got.rdns = name;
	got.helo = helo;
	*ev = got;
	*pp = after;
	return 0;
}

/*
 * The host field that follows one of the occurrences of marker (e.g.
 * "\" H="); each occurrence whose host parses and is followed by the
 * shape's text counts. Returns 0 when there is at least one and all agree
 * (*after past the first), else as ex_host() (-1, or -2: hosts, none
 * followed by the shape's text); disagreeing hosts are -1.
 */
static int ex_host_agreed(struct parser *p, const char *q, const char *end, const char *marker, size_t ml,
			  enum ex_tail tail, struct event *ev, const char **after)
{
	int found = 0;
	struct event first = *ev, cur;
	bool addr = false;
	for (const char *r = q; (r = find(r, end, marker, ml)) != NULL; r++) {
		const char *h = r + ml;
		cur = first;
		int hr = ex_host(p, &h, end, &cur, tail);
		addr |= hr == -2;
		if (hr == 0) {
			if (found && ipaddr_cmp(&cur.ip, &ev->ip) != 0)
				return -1;
			if (!found) {
				*ev = cur;
				*after = h;
			}
			found++;
		}
	}
	return found ? 0 : addr ? -2 : -1;
}

/* What a shape returns when ex_host() or ex_host_agreed() gave hr < 0: no
 * host field is an unparsed line (bad_address); host fields not followed by
 * the shape's text are a line not known (no event). */
static int ex_no_host(int hr, int *reason)
{
	if (hr == -2)
		return 0;
	*reason = PARSE_R_BAD_ADDRESS;
	return -1;
}

static void ex_text_after(struct event *ev, const char *q, const char *end)
{
	const char *c = FIND_AFTER(q, end, ": ");
	ev->text = c ? mkspan(c, end) : mkspan(q, end);
}

/* "<addr>" (or a bare addr up to ": ") at q into *s; returns the end. */
static const char *ex_addr_arg(const char *q, const char *end, struct span *s)
{
	if (q < end && *q == '<') {
		const char *e = FIND(q, end, ">: ");
		if (!e)
			e = memchr(q, '>', (size_t)(end - q));
		if (!e)
			return q;
		*s = mkspan(q + 1, e);
		return e + 1;
	}
	const char *e = FIND(q, end, ": ");
	if (!e)
		e = end;
	*s = mkspan(q, e);
	return e;
}

/* The category of an ACL refusal from its text: greylisting for a
 * temporary one that says so, else by the text and the stage. */
static enum ev_category ex_category(const struct event *ev, bool temp)
{
	const char *t = ev->text.p, *te = t + ev->text.n;
	if (temp && t && FIND(t, te, "reylist"))
		return CAT_GREYLISTED;
	return category_of_exim(t, te, ev->stage);
}

/*
 * The verb after a host field and its fields: "[temporarily ]rejected
 * WHAT[: text]" (the ACL refusals of smtp_handle_acl_fail and local_scan),
 * "sender verify fail|defer for <addr>[: text]" (a note: the refusal that
 * follows is logged on its own line), "dropped: too many ...", "RCPT <a>:
 * discarded by RCPT ACL" (the ACL's discard verb). Returns 1
 * (event) or 0 (Warning:, incomplete transaction, TLS notes ...).
 */
static int ex_verb(const char *q, const char *end, struct event *ev)
{
	const char *r = SKIP(q, end, " ");
	if (!r)
		return 0;
	const char *v;
	bool fail = false;
	if ((v = SKIP(r, end, "sender verify fail for ")) != NULL ||
	    (v = SKIP(r, end, "sender verify defer for ")) != NULL) {
		fail = SKIP(r, end, "sender verify fail") != NULL;
		struct span addr = SPAN_NULL;
		const char *t = ex_addr_arg(v, end, &addr);
		ev->from = addr;
		ev->kind = EV_NOTE;
		ev->stage = ST_MAIL;
		ev->cat = fail ? CAT_UNKNOWN_SENDER_DOMAIN : CAT_OTHER;
		const char *tt = SKIP(t, end, ": ");
		ev->text = tt ? mkspan(tt, end) : SPAN_NULL;
		return 1;
	}
	if ((v = SKIP(r, end, "dropped: ")) != NULL && SKIP(v, end, "too many ")) {
		ev->kind = EV_PROTOCOL;
		ev->stage = ST_OTHER;
		ev->cat = FIND(v, end, "unrecognized commands") ? CAT_NON_SMTP : CAT_TOO_MANY_ERRORS;
		ev->code = 421;
		ev->text = mkspan(v, end);
		return 1;
	}
	if ((v = SKIP(r, end, "RCPT ")) != NULL) {
		/* "RCPT <a>: discarded by RCPT ACL[: text]": refused, though the
		 * client was told 250 (no code) */
		struct span to = SPAN_NULL;
		const char *t = SKIP(ex_addr_arg(v, end, &to), end, ": ");
		if (!t || !SKIP(t, end, "discarded by "))
			return 0;
		ev->kind = EV_REJECT;
		ev->stage = ST_RCPT;
		ev->to = to;
		ev->text = mkspan(t, end);
		ev->cat = category_of_exim(t, end, ST_RCPT);
		return 1;
	}
	if ((v = SKIP(r, end, "incomplete transaction (")) != NULL) {
		/* the client left after MAIL without sending a message (QUIT or
		 * connection lost): a note, its refusals were logged before */
		ev->kind = EV_NOTE;
		ev->stage = ST_MAIL;
		ev->cat = CAT_OTHER;
		const char *f = FIND_AFTER(v, end, ") from <");
		if (f && end[-1] == '>')
			ev->from = mkspan(f, end - 1);
		const char *te = memchr(v, ')', (size_t)(end - v));
		ev->text = mkspan(r, te ? te + 1 : end);
		return 1;
	}
	bool temp = false;
	if ((v = SKIP(r, end, "temporarily rejected ")) != NULL)
		temp = true;
	else if ((v = SKIP(r, end, "rejected ")) == NULL)
		return 0;
	const char *w;
	ev->kind = EV_REJECT;
	ev->code = temp ? 451 : 550;
	if ((w = SKIP(v, end, "RCPT ")) != NULL) {
		ev->stage = ST_RCPT;
		w = ex_addr_arg(w, end, &ev->to);
	} else if ((w = SKIP(v, end, "MAIL ")) != NULL) {
		ev->stage = ST_MAIL;
		struct span fa = SPAN_NULL;
		w = ex_addr_arg(w, end, &fa);
		if (fa.p)
			ev->from = fa;
	} else if ((w = SKIP(v, end, "after DATA")) != NULL || (w = SKIP(v, end, "DATA")) != NULL ||
		   (w = SKIP(v, end, "during MIME ACL checks")) != NULL) {
		ev->stage = ST_DATA;
	} else if ((w = SKIP(v, end, "by local_scan()")) != NULL) {
		/* local_scan (SA-Exim and the like) refuses the message */
		ev->stage = ST_END_OF_DATA;
		ex_text_after(ev, w, end);
		ev->cat = CAT_CONTENT;
		return 1;
	} else if ((w = SKIP(v, end, "EHLO or HELO ")) != NULL) {
		ev->stage = ST_HELO;
		ex_text_after(ev, w, end);
		ev->cat = CAT_HELO;
		return 1;
	} else if ((w = SKIP(v, end, "connection")) != NULL) {
		ev->stage = ST_CONNECT;
	} else {
		/* AUTH, VRFY, EXPN, ETRN, STARTTLS, QUIT, ...: the command word */
		w = v;
		while (w < end && *w >= 'A' && *w <= 'Z')
			w++;
		ev->stage = stage_of_command(v, (size_t)(w - v));
	}
	ex_text_after(ev, w, end);
	ev->cat = ex_category(ev, temp);
	return 1;
}

/* "H=host fields verb" (the H= already skipped). */
static int ex_h_line(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	int hr = ex_host(p, &q, end, ev, EXT_VERB);
	if (hr < 0)
		return ex_no_host(hr, reason);
	return ex_verb(ex_fields(q, end, ev), end, ev);
}

/* "X authenticator failed for HOST: 535 text (set_id=user)", X any name. */
static int ex_auth_failed(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	const char *lim = end - q > 64 ? q + 64 : end;
	const char *af = FIND(q, lim, " authenticator failed for ");
	if (!af || memchr(q, ' ', (size_t)(af - q)))
		return 0; /* the authenticator's name is one word */
	const char *h = SKIP(af, end, " authenticator failed for ");
	int hr = ex_host(p, &h, end, ev, EXT_COLON);
	if (hr < 0)
		return ex_no_host(hr, reason);
	h = ex_fields(h, end, ev);
	ev->kind = EV_AUTH_FAILURE;
	ev->stage = ST_AUTH;
	ev->cat = CAT_AUTH;
	ev->code = 535; /* what the authenticators answer; the line says it too */
	const char *t = SKIP(h, end, ": ");
	if (t) {
		parse_code(&t, end, ev);
		ev->text = mkspan(t, end);
		const char *u = RFIND_AFTER(t, end, "(set_id=");
		if (u && end[-1] == ')')
			ev->user = mkspan(u, end - 1);
	}
	return 1;
}

/* "SMTP connection from HOST ...": connect, disconnect, lost; "closed by
 * DROP in ACL" ends a connection the ACL refused (that refusal has its own
 * "rejected" line): a disconnect with category client_policy. */
static int ex_connection(const char *h, const char *end, struct event *ev)
{
	const char *r = ex_fields(h, end, ev);
	const char *t = SKIP(r, end, " ");
	if (SKIP(r, end, " (TCP/IP connection count")) {
		ev->kind = EV_CONNECT;
		ev->stage = ST_CONNECT;
	} else if (t && SKIP(t, end, "closed by DROP in ACL")) {
		ev->kind = EV_DISCONNECT;
		ev->stage = ST_OTHER;
		ev->cat = CAT_CLIENT_POLICY;
	} else if (t && SKIP(t, end, "closed by QUIT")) {
		ev->kind = EV_DISCONNECT;
		ev->stage = ST_OTHER;
	} else if (t && SKIP(t, end, "lost")) {
		ev->kind = EV_LOST;
		ev->stage = FIND(t, end, "message data") || FIND(t, end, "final dot") ? ST_DATA : ST_OTHER;
	} else {
		return 0;
	}
	ev->text = t ? mkspan(t, end) : SPAN_NULL;
	return 1;
}

/*
 * SA-Exim: "SA: Action: WHAT: score=.. required=.. (scanned in ... |
 * Message-Id: ...). From <sender> (host=NAME [ip]) for rcpts". The sender
 * and the Message-Id are the client's text: every "(host=" field must name
 * the same client.
 */
static int ex_sa_action(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	const char *h;
	int hr = ex_host_agreed(p, q, end, LIT(" (host="), EXT_SA, ev, &h);
	if (hr < 0)
		return ex_no_host(hr, reason);
	ev->stage = ST_END_OF_DATA;
	ev->cat = CAT_CONTENT;
	const char *te = memchr(q, ':', (size_t)(end - q));
	ev->text = mkspan(q, te ? te : q);
	if (SKIP(q, end, "permanently rejected")) {
		ev->kind = EV_REJECT;
		ev->code = 550;
	} else if (SKIP(q, end, "temporarily rejected")) {
		ev->kind = EV_REJECT;
		ev->code = 451;
	} else if (SKIP(q, end, "silently tossed") || SKIP(q, end, "saved message to")) {
		ev->kind = EV_REJECT; /* accepted and thrown away: a refusal the client never saw */
	} else {
		ev->kind = EV_NOTE; /* flagged but accepted, teergrubed */
	}
	return 1;
}

static int ex_body(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	const char *h, *r;
	int hr;
	bool mail = false, data = false;
	if ((h = SKIP(q, end, "H=")) != NULL)
		return ex_h_line(p, h, end, ev, reason);
	switch (*q) {
	case 'F':
		/* "F=<sender> H=host ... rejected by local_scan(): ..." (older
		 * Exim): the sender comes first, so every H= must agree */
		if ((r = SKIP(q, end, "F=")) != NULL) {
			/* "F=<a@b>" or, before 4.7x, "F=a@b" */
			const char *a = SKIP(r, end, "<");
			const char *fe = a ? FIND(a, end, "> ") : memchr(r, ' ', (size_t)(end - r));
			if ((hr = ex_host_agreed(p, q, end, LIT(" H="), EXT_VERB, ev, &h)) < 0)
				return ex_no_host(hr, reason);
			if (fe)
				ev->from = mkspan(a ? a : r, fe);
			return ex_verb(ex_fields(h, end, ev), end, ev);
		}
		break;
	case 'r':
		if ((mail = (h = SKIP(q, end, "rejected MAIL FROM:")) != NULL) ||
		    (h = SKIP(q, end, "rejected RCPT TO:")) != NULL) {
			/* "rejected MAIL FROM:<client text> H=host: text" */
			if ((hr = ex_host_agreed(p, h, end, LIT(" H="), EXT_COLON, ev, &h)) < 0)
				return ex_no_host(hr, reason);
			ev->kind = EV_REJECT;
			ev->stage = mail ? ST_MAIL : ST_RCPT;
			ev->code = 550;
			r = SKIP(h, end, ": ");
			ev->text = r ? mkspan(r, end) : mkspan(h, end);
			ev->cat = category_of_exim(ev->text.p, end, ev->stage);
			return 1;
		}
		if ((h = SKIP(q, end, "rejected ")) != NULL) {
			/* "rejected EHLO from HOST: syntactically invalid argument(s): x",
			 * "rejected MAIL from HOST: no HELO/EHLO given", other commands */
			const char *w = h;
			while (w < end && *w >= 'A' && *w <= 'Z')
				w++;
			r = SKIP(w, end, " from ");
			if (w == h || !r)
				break;
			if ((hr = ex_host(p, &r, end, ev, EXT_COLON)) < 0)
				return ex_no_host(hr, reason);
			r = ex_fields(r, end, ev);
			ev->kind = EV_REJECT;
			ev->stage = stage_of_command(h, (size_t)(w - h));
			ex_text_after(ev, r, end);
			if (ev->stage == ST_HELO) {
				ev->code = 501;
				ev->cat = CAT_HELO;
			} else if (ev->stage == ST_MAIL) {
				ev->code = 503;
				ev->cat = FIND(ev->text.p, end, "HELO") ? CAT_HELO : CAT_SENDER_POLICY;
			} else {
				ev->code = 501;
				ev->cat = CAT_OTHER;
			}
			return 1;
		}
		break;
	case 'S':
		if ((h = SKIP(q, end, "SMTP connection ")) != NULL) {
			if ((r = SKIP(h, end, "Ci=")) != NULL) { /* 4.97+: "SMTP connection Ci=N from" */
				while (r < end && *r >= '0' && *r <= '9')
					r++;
				h = SKIP(r, end, " ");
				if (!h)
					break;
			}
			if (!(h = SKIP(h, end, "from ")))
				break;
			if ((hr = ex_host(p, &h, end, ev, EXT_CONN)) < 0)
				return ex_no_host(hr, reason);
			return ex_connection(h, end, ev);
		}
		if ((h = SKIP(q, end, "SMTP call from ")) != NULL) {
			if ((hr = ex_host(p, &h, end, ev, EXT_DROPPED)) < 0)
				return ex_no_host(hr, reason);
			return ex_verb(ex_fields(h, end, ev), end, ev);
		}
		if (SKIP(q, end, "SMTP protocol synchronization error (")) {
			/* "...: rejected connection from H=host input=..." (before the
			 * greeting) or "...: rejected \"CMD\" H=host next input=..." */
			if ((h = FIND_AFTER(q, end, "): rejected connection from H=")) != NULL) {
				if ((hr = ex_host(p, &h, end, ev, EXT_INPUT)) < 0)
					return ex_no_host(hr, reason);
				ev->stage = ST_CONNECT;
				ev->cat = CAT_PREGREET;
			} else {
				if ((hr = ex_host_agreed(p, q, end, LIT("\" H="), EXT_INPUT, ev, &h)) < 0)
					return ex_no_host(hr, reason);
				ev->stage = ST_OTHER;
				ev->cat = CAT_PIPELINING;
			}
			ev->kind = EV_PROTOCOL;
			ev->code = 554;
			r = FIND_AFTER(q, end, ")");
			ev->text = mkspan(q, r ? r : end);
			return 1;
		}
		if ((h = SKIP(q, end, "SMTP protocol error in \"")) != NULL ||
		    (h = SKIP(q, end, "SMTP syntax error in \"")) != NULL) {
			/* the quoted command is the client's text */
			if ((hr = ex_host_agreed(p, h, end, LIT("\" H="), EXT_TEXT, ev, &h)) < 0)
				return ex_no_host(hr, reason);
			h = ex_fields(h, end, ev);
			ev->kind = EV_PROTOCOL; /* as Postfix's "Illegal address syntax" */
			ev->stage = ST_OTHER;
			ev->cat = CAT_OTHER;
			r = SKIP(h, end, " ");
			ev->text = r ? mkspan(r, end) : SPAN_NULL;
			return 1;
		}
		if ((h = SKIP(q, end, "SMTP command timeout on ")) != NULL ||
		    (data = (h = SKIP(q, end, "SMTP data timeout (message abandoned) on ")) != NULL)) {
			if ((r = SKIP(h, end, "TLS ")) != NULL)
				h = r;
			if (!(h = SKIP(h, end, "connection from ")))
				break;
			if ((hr = ex_host(p, &h, end, ev, EXT_END)) < 0)
				return ex_no_host(hr, reason);
			ex_fields(h, end, ev);
			ev->kind = EV_LOST;
			ev->stage = data ? ST_DATA : ST_OTHER;
			ev->text = data ? SPAN_LIT("SMTP data timeout") : SPAN_LIT("SMTP command timeout");
			return 1;
		}
		if ((h = SKIP(q, end, "SA: Action: ")) != NULL)
			return ex_sa_action(p, h, end, ev, reason);
		break;
	case 'C':
		if ((h = SKIP(q, end, "Connection from ")) != NULL) {
			if ((hr = ex_host(p, &h, end, ev, EXT_REFUSED)) < 0)
				return ex_no_host(hr, reason);
			h = ex_fields(h, end, ev);
			if (!SKIP(h, end, " refused"))
				return 0;
			ev->kind = EV_REJECT;
			ev->stage = ST_CONNECT;
			ev->code = 421;
			ex_text_after(ev, h, end);
			ev->cat = FIND(h, end, "too many") ? CAT_RATE_LIMITED : CAT_CLIENT_POLICY;
			return 1;
		}
		break;
	case 'u':
		if ((h = SKIP(q, end, "unexpected disconnection while reading SMTP command from ")) != NULL) {
			if ((hr = ex_host(p, &h, end, ev, EXT_END)) < 0)
				return ex_no_host(hr, reason);
			ex_fields(h, end, ev);
			ev->kind = EV_LOST;
			ev->stage = ST_OTHER;
			ev->text = SPAN_LIT("unexpected disconnection");
			return 1;
		}
		break;
	case 'n':
		if ((h = SKIP(q, end, "no MAIL in ")) != NULL) {
			/* beside the connection's own "closed by QUIT" / "lost" line,
			 * as Sendmail's "did not issue MAIL" */
			if ((r = SKIP(h, end, "TFO* ")) != NULL || (r = SKIP(h, end, "TFO ")) != NULL)
				h = r;
			if (!(h = SKIP(h, end, "SMTP connection from ")))
				break;
			if ((hr = ex_host(p, &h, end, ev, EXT_END)) < 0)
				return ex_no_host(hr, reason);
			ex_fields(h, end, ev);
			ev->kind = EV_PROTOCOL;
			ev->stage = ST_OTHER;
			ev->cat = CAT_NO_MAIL;
			ev->text = SPAN_LIT("no MAIL");
			return 1;
		}
		if ((h = SKIP(q, end, "no host name found for IP address ")) != NULL) {
			if (ev_set_ip(p, ev, h, (size_t)(end - h)) < 0)
				goto bad;
			ev->kind = EV_NOTE;
			ev->stage = ST_CONNECT;
			ev->cat = CAT_NO_RDNS;
			ev->text = SPAN_LIT("no host name found");
			return 1;
		}
		if (SKIP(q, end, "no IP address found for host ")) {
			/* "... NAME (during SMTP connection from HOST)": the name
			 * is from the DNS or the HELO; the host field ends the line */
			h = RFIND_AFTER(q, end, " (during SMTP connection from ");
			if (!h)
				return 0;
			if ((hr = ex_host(p, &h, end, ev, EXT_CLOSE)) < 0)
				return ex_no_host(hr, reason);
			h = ex_fields(h, end, ev);
			if (h + 1 != end || *h != ')')
				goto bad;
			ev->kind = EV_NOTE;
			ev->stage = ST_CONNECT;
			ev->cat = CAT_NO_RDNS;
			ev->text = SPAN_LIT("no IP address found for host");
			return 1;
		}
		break;
	default: break;
	}
	/* "unqualified verify rejected: <addr> H=host ... (reason)": a VRFY
	 * refused; the address before the host field is the client's */
	const char *lim = end - q > 32 ? q + 32 : end;
	const char *vr = FIND(q, lim, " verify rejected: ");
	if (vr && !memchr(q, ' ', (size_t)(vr - q))) {
		if ((hr = ex_host_agreed(p, SKIP(vr, end, " verify rejected: "), end, LIT(" H="), EXT_PAREN,
					 ev, &r)) < 0)
			return ex_no_host(hr, reason);
		r = ex_fields(r, end, ev);
		ev->kind = EV_REJECT;
		ev->stage = ST_OTHER;
		ev->cat = CAT_OTHER;
		const char *t = SKIP(r, end, " (");
		ev->text = t && end[-1] == ')' ? mkspan(t, end - 1) : SPAN_NULL;
		return 1;
	}
	return ex_auth_failed(p, q, end, ev, reason);
bad:
	*reason = PARSE_R_BAD_ADDRESS;
	return -1;
}

/* A message id: 6-6-2 (before 4.97) or 6-11-4 base62. */
static size_t ex_msgid(const char *q, const char *end)
{
	static const int parts[2][3] = {{6, 6, 2}, {6, 11, 4}};
	for (int v = 0; v < 2; v++) {
		const char *r = q;
		bool ok = true;
		for (int i = 0; i < 3 && ok; i++) {
			for (int k = 0; k < parts[v][i]; k++, r++)
				if (r >= end || !((*r >= '0' && *r <= '9') || (*r >= 'a' && *r <= 'z') ||
						  (*r >= 'A' && *r <= 'Z'))) {
					ok = false;
					break;
				}
			if (ok && i < 2 && (r >= end || *r++ != '-'))
				ok = false;
		}
		if (ok && r < end && *r == ' ')
			return (size_t)(r - q);
	}
	return 0;
}

/* Exim's own stamp inside a syslog message: "YYYY-MM-DD HH:MM:SS[.mmm][
 * +HHMM] " then an optional "[pid] ". Returns the position after, or q. */
static const char *ex_inner_stamp(const char *q, const char *end)
{
	if (end - q < 20 || q[4] != '-' || q[7] != '-' || q[10] != ' ' || q[13] != ':' || q[16] != ':')
		return q;
	for (int i = 0; i < 19; i++)
		if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && (q[i] < '0' || q[i] > '9'))
			return q;
	const char *r = q + 19;
	if (r < end && *r == '.')
		for (r++; r < end && *r >= '0' && *r <= '9';)
			r++;
	if (end - r >= 7 && r[0] == ' ' && (r[1] == '+' || r[1] == '-') && r[6] == ' ')
		r += 6;
	if (r >= end || *r != ' ')
		return q;
	r++;
	if (r < end && *r == '[') {
		const char *b = memchr(r, ']', (size_t)MXW_MIN(end - r, 12));
		if (b && b + 1 < end && b[1] == ' ')
			r = b + 2;
	}
	return r;
}

/* "<= sender H=host ... P=esmtp S=123 id=x for a@b c@d": the recipients
 * after the last " for " (log_selector +received_recipients), when no quote
 * (a subject T="...") follows it. 0 when not logged. */
static uint16_t ex_nrcpt(const char *q, const char *end)
{
	const char *f = RFIND_AFTER(q, end, " for ");
	if (!f || memchr(f, '"', (size_t)(end - f)) || f == end)
		return 0;
	unsigned n = 1;
	for (const char *c = f; c < end; c++)
		if (*c == ' ' && c + 1 < end && c[1] != ' ')
			n++;
	return (uint16_t)MXW_MIN(n, 65535u);
}

int exim_parse(struct parser *p, struct parser_source *s, const struct envelope *e, struct event *ev,
	       int *reason)
{
	const char *q = e->msg, *end = e->end;
	if (!e->exim_native) {
		/* Exim cuts a long syslog message into "[1\10] ...", "[2\10]
		 * ...", "[10/10] ...": the host field is in the first part */
		const char *n = q < end && *q == '[' ? q + 1 : NULL, *d = n;
		while (d && d < end && *d >= '0' && *d <= '9' && d - n < 4)
			d++;
		if (d && d > n && d < end && (*d == '\\' || *d == '/')) {
			const char *m = d + 1, *me = m;
			while (me < end && *me >= '0' && *me <= '9' && me - m < 4)
				me++;
			const char *after = me > m ? SKIP(me, end, "] ") : NULL;
			if (after) {
				if (d - n != 1 || *n != '1')
					return 0; /* a later part */
				q = after;
			}
		}
		q = ex_inner_stamp(q, end); /* "exim[1]: 2026-11-27 20:26:42 [1] ..." */
	}
	if (q >= end)
		return 0;
	size_t ml = ex_msgid(q, end);
	if (ml) {
		ev->queue_id = mkspan(q, q + ml);
		q += ml + 1;
		const char *a = SKIP(q, end, "<= ");
		if (a) {
			/* arrival: "<= sender H=host ... P=esmtp S=123" (sender is client text) */
			const char *h;
			if (ex_host_agreed(p, a, end, LIT(" H="), EXT_ANY, ev, &h) < 0)
				return 0; /* local submission (no H=), or ambiguous */
			ev->kind = EV_ACCEPT;
			ev->stage = ST_DATA;
			const char *sp = memchr(a, ' ', (size_t)(end - a));
			ev->from = mkspan(a, sp ? sp : end);
			const char *au = FIND_AFTER(h, end, " A=");
			if (au) {
				ev->auth_ok = true;
				const char *ue = memchr(au, ' ', (size_t)(end - au));
				const char *colon = memchr(au, ':', (size_t)((ue ? ue : end) - au));
				if (colon)
					ev->user = mkspan(colon + 1, ue ? ue : end);
			}
			ev->nrcpt = ex_nrcpt(h, end);
			return 1;
		}
		if (q >= end || *q == '=' || *q == '-' || *q == '*' || *q == '>')
			return 0; /* deliveries (=>, ->, ==, **, *>) */
	}
	int rc = ex_body(p, q, end, ev, reason);
	if (rc == 1 && ev->kind != EV_CONNECT && ev->kind != EV_DISCONNECT && ev->kind != EV_ACCEPT &&
	    exim_dedup_seen(p, s, e->msg, end, e->ts_us))
		return 0; /* the rejectlog's copy of a mainlog line (or vice versa) */
	return rc;
}

/*
 * exim.c - Exim mainlog and rejectlog messages (Exim's own files or syslog).
 *
 * The client is the host field Exim writes: "H=name (helo) [ip]:port",
 * "H=(helo) [ip]", "H=[ip]:port", or the same without "H=" after a fixed
 * prefix ("SMTP connection from ", "authenticator failed for "). The helo in
 * parentheses may hold brackets ("([192.0.2.66])"); the client is the bracket
 * after it. Where Exim prints client text before the host field (a quoted
 * command, a sender address), every candidate host field is parsed and the
 * line is dropped unless all of them agree.
 *
 * Exim logs no SMTP code for ACL rejections: "rejected" is reported as 550
 * and "temporarily rejected" as 451, the codes Exim sends by default.
 */
#include "parsers/internal.h"

bool exim_dedup_seen(struct parser *p, const struct parser_source *s, const char *msg, const char *end,
		     int64_t ts_us);

/* A host field at *pp (without "H="). Advances past it (and its port). */
static int ex_host(struct parser *p, const char **pp, const char *end, struct event *ev)
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
	if (q < end && *q == '(') {
		const char *h = ++q;
		while (q < end && *q != ')' && *q != ' ' && *q != '(')
			q++;
		if (q >= end || *q != ')' || !HAS(q, end, ") ["))
			return -1;
		helo = mkspan(h, q);
		q += 2;
	}
	struct span ip;
	if (scan_bracket(&q, end, &ip) != PARSE_R_NONE)
		return -1;
	struct event tmp = *ev;
	if (ev_set_ip(p, &tmp, ip.p, ip.n) < 0)
		return -1;
	tmp.port = 0;
	scan_opt_port(&q, end, true, &tmp.port); /* ":port", or ".port" (Exim before 4.8x, IPv6) */
	if (q < end && *q != ' ' && *q != ':' && *q != ',')
		return -1;
	tmp.rdns = name;
	tmp.helo = helo;
	*ev = tmp;
	*pp = q;
	return 0;
}

/*
 * The host field that follows one of the occurrences of marker (e.g.
 * "\" H="); each occurrence whose host parses and is followed by a space or
 * the end counts. Returns 0 when there is at least one and all agree (*pp
 * after the last one), -1 otherwise.
 */
static int ex_host_agreed(struct parser *p, const char *q, const char *end, const char *marker, size_t ml,
			  struct event *ev, const char **after)
{
	int found = 0;
	struct event first = *ev, cur;
	const char *r = q;
	while ((r = find(r, end, marker, ml)) != NULL) {
		const char *h = r + ml;
		cur = first;
		if (ex_host(p, &h, end, &cur) == 0 && (h == end || *h == ' ' || *h == ':')) {
			if (found && ipaddr_cmp(&cur.ip, &ev->ip) != 0)
				return -1;
			if (!found)
				*ev = cur;
			*after = h;
			found++;
		}
		r++;
	}
	return found ? 0 : -1;
}

static void ex_text_after(struct event *ev, const char *q, const char *end)
{
	const char *c = FIND(q, end, ": ");
	ev->text = c ? mkspan(c + 2, end) : mkspan(q, end);
}

/* "<addr>" at q: sets *s to the address without brackets; returns the end. */
static const char *ex_angle(const char *q, const char *end, struct span *s)
{
	if (q >= end || *q != '<')
		return q;
	const char *e = FIND(q, end, ">: ");
	if (!e)
		e = memchr(q, '>', (size_t)(end - q));
	if (!e)
		return q;
	*s = mkspan(q + 1, e);
	return e + 1;
}

/* "H=..." lines: rejections by ACL and a few others. */
static int ex_h_line(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	if (ex_host(p, &q, end, ev) < 0) {
		*reason = PARSE_R_BAD_ADDRESS;
		return -1;
	}
	/* skip "I=[ip]:port" and other fixed fields up to F= or the verb */
	const char *rest = q;
	const char *f = HAS(rest, end, " I=[") ? FIND(rest + 4, end, " ") : NULL;
	if (f)
		rest = f;
	struct span from = SPAN_NULL;
	if (HAS(rest, end, " F=<")) {
		const char *fe = FIND(rest + 4, end, "> ");
		if (fe) {
			from = mkspan(rest + 4, fe);
		}
	}
	const char *m;
	bool temp = false;
	if ((m = FIND(rest, end, " rejected RCPT ")) != NULL) {
		temp = m - rest >= 12 && memcmp(m - 12, " temporarily", 12) == 0;
		ev->stage = ST_RCPT;
		const char *t = m + 15;
		t = ex_angle(t, end, &ev->to);
		ev->text = HAS(t, end, ": ") ? mkspan(t + 2, end) : mkspan(t, end);
	} else if ((m = FIND(rest, end, " rejected after DATA")) != NULL) {
		temp = m - rest >= 12 && memcmp(m - 12, " temporarily", 12) == 0;
		ev->stage = ST_DATA;
		const char *t = m + 20;
		ev->text = HAS(t, end, ": ") ? mkspan(t + 2, end) : mkspan(t, end);
	} else if ((m = FIND(rest, end, " rejected MAIL ")) != NULL) {
		temp = m - rest >= 12 && memcmp(m - 12, " temporarily", 12) == 0;
		ev->stage = ST_MAIL;
		const char *t = m + 15;
		struct span fa = SPAN_NULL;
		t = ex_angle(t, end, &fa);
		if (fa.p)
			from = fa;
		ev->text = HAS(t, end, ": ") ? mkspan(t + 2, end) : mkspan(t, end);
	} else if ((m = FIND(rest, end, " rejected EHLO or HELO ")) != NULL) {
		ev->stage = ST_HELO;
		ex_text_after(ev, m + 23, end);
		ev->kind = EV_REJECT;
		ev->code = 550;
		ev->cat = CAT_HELO;
		return 1;
	} else if ((m = FIND(rest, end, " rejected connection in ")) != NULL) {
		ev->stage = ST_CONNECT;
		ex_text_after(ev, m + 24, end);
	} else if ((m = FIND(rest, end, " dropped: too many ")) != NULL) {
		ev->kind = EV_PROTOCOL;
		ev->stage = ST_OTHER;
		ev->cat = CAT_TOO_MANY_ERRORS;
		ev->code = 421;
		ev->text = mkspan(m + 10, end);
		return 1;
	} else {
		return 0; /* incomplete transaction, sender verify, Warning:, TLS ... */
	}
	ev->from = from;
	ev->kind = EV_REJECT;
	ev->code = temp ? 451 : 550;
	ev->cat = temp && FIND(ev->text.p, ev->text.p + ev->text.n, "reylist")
		      ? CAT_GREYLISTED
		      : category_of_exim(ev->text.p, ev->text.p + ev->text.n, ev->stage);
	return 1;
}

static int ex_body(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	if (HAS(q, end, "H="))
		return ex_h_line(p, q + 2, end, ev, reason);
	const char *h;
	switch (*q) {
	case 'r':
		if (HAS(q, end, "rejected EHLO from ") || HAS(q, end, "rejected HELO from ")) {
			h = q + 19;
			if (ex_host(p, &h, end, ev) < 0)
				goto bad;
			ev->kind = EV_REJECT;
			ev->stage = ST_HELO;
			ev->code = 501;
			ev->cat = CAT_HELO;
			ex_text_after(ev, h, end);
			return 1;
		}
		if (HAS(q, end, "rejected MAIL from ")) {
			h = q + 19;
			if (ex_host(p, &h, end, ev) < 0)
				goto bad;
			ev->kind = EV_REJECT;
			ev->stage = ST_MAIL;
			ev->code = 503;
			ex_text_after(ev, h, end);
			ev->cat = FIND(ev->text.p, end, "HELO") ? CAT_HELO : CAT_SENDER_POLICY;
			return 1;
		}
		if (HAS(q, end, "rejected MAIL FROM:") || HAS(q, end, "rejected RCPT TO:")) {
			/* "rejected MAIL FROM:<client text> H=host: text" */
			bool mail = q[9] == 'M';
			if (ex_host_agreed(p, q + 17, end, " H=", 3, ev, &h) < 0)
				goto bad;
			ev->kind = EV_REJECT;
			ev->stage = mail ? ST_MAIL : ST_RCPT;
			ev->code = 550;
			ev->text = HAS(h, end, ": ") ? mkspan(h + 2, end) : mkspan(h, end);
			ev->cat = category_of_exim(ev->text.p, end, ev->stage);
			return 1;
		}
		break;
	case 'S':
		if (HAS(q, end, "SMTP connection from ")) {
			h = q + 21;
			if (ex_host(p, &h, end, ev) < 0)
				goto bad;
			if (HAS(h, end, " (TCP/IP connection count")) {
				ev->kind = EV_CONNECT;
				ev->stage = ST_CONNECT;
			} else if (HAS(h, end, " closed by QUIT") || HAS(h, end, " closed by DROP")) {
				ev->kind = EV_DISCONNECT;
				ev->stage = ST_OTHER;
			} else if (HAS(h, end, " lost")) {
				ev->kind = EV_LOST;
				ev->stage = ST_OTHER;
			} else {
				return 0;
			}
			ev->text = h < end ? mkspan(h + 1, end) : SPAN_NULL;
			return 1;
		}
		if (HAS(q, end, "SMTP call from ")) {
			h = q + 15;
			if (ex_host(p, &h, end, ev) < 0)
				goto bad;
			if (!HAS(h, end, " dropped: "))
				return 0;
			ev->kind = EV_PROTOCOL;
			ev->stage = ST_OTHER;
			ev->code = 421;
			ev->text = mkspan(h + 10, end);
			ev->cat = FIND(h, end, "unrecognized commands") ? CAT_NON_SMTP : CAT_TOO_MANY_ERRORS;
			return 1;
		}
		if (HAS(q, end, "SMTP protocol synchronization error (")) {
			const char *c = FIND(q, end, "): rejected connection from H=");
			if (c) {
				h = c + 30;
				if (ex_host(p, &h, end, ev) < 0)
					goto bad;
				ev->kind = EV_PROTOCOL;
				ev->stage = ST_CONNECT;
				ev->cat = CAT_PREGREET;
				ev->code = 554;
			} else {
				if (ex_host_agreed(p, q, end, "\" H=", 4, ev, &h) < 0)
					goto bad;
				ev->kind = EV_PROTOCOL;
				ev->stage = ST_OTHER;
				ev->cat = CAT_PIPELINING;
				ev->code = 554;
			}
			ev->text = mkspan(q, FIND(q, end, ")") ? FIND(q, end, ")") + 1 : end);
			return 1;
		}
		if (HAS(q, end, "SMTP protocol error in \"")) {
			if (ex_host_agreed(p, q + 24, end, "\" H=", 4, ev, &h) < 0)
				goto bad;
			ev->kind = EV_PROTOCOL;
			ev->stage = ST_OTHER;
			ev->cat = CAT_OTHER;
			ev->text = h < end ? mkspan(h + 1, end) : SPAN_NULL;
			return 1;
		}
		break;
	case 'C':
		if (HAS(q, end, "Connection from ")) {
			h = q + 16;
			if (ex_host(p, &h, end, ev) < 0)
				goto bad;
			if (!HAS(h, end, " refused"))
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
		if (HAS(q, end, "unexpected disconnection while reading SMTP command from ")) {
			h = q + 57;
			if (ex_host(p, &h, end, ev) < 0)
				goto bad;
			ev->kind = EV_LOST;
			ev->stage = ST_OTHER;
			ev->text = (struct span){q, 23};
			return 1;
		}
		break;
	case 'n':
		if (HAS(q, end, "no MAIL in SMTP connection from "))
			return 0; /* a note beside the connection's own "closed by QUIT" / "lost" line */
		if (HAS(q, end, "no host name found for IP address ")) {
			h = q + 34;
			if (ev_set_ip(p, ev, h, (size_t)(end - h)) < 0)
				goto bad;
			ev->kind = EV_PROTOCOL;
			ev->stage = ST_CONNECT;
			ev->cat = CAT_NO_RDNS;
			ev->text = mkspan(q, q + 18);
			return 1;
		}
		break;
	default: break;
	}
	/* "<mech> authenticator failed for HOST: 535 ... (set_id=user)" */
	const char *lim = end - q > 48 ? q + 48 : end;
	const char *af = FIND(q, lim, " authenticator failed for ");
	if (af && !memchr(q, ' ', (size_t)(af - q))) {
		h = af + 26;
		if (ex_host(p, &h, end, ev) < 0)
			goto bad;
		ev->kind = EV_AUTH_FAILURE;
		ev->stage = ST_AUTH;
		ev->cat = CAT_AUTH;
		if (HAS(h, end, ": ")) {
			h += 2;
			parse_code(&h, end, ev);
			ev->text = mkspan(h, end);
		}
		const char *u = RFIND(h, end, "(set_id=");
		if (u && end[-1] == ')')
			ev->user = mkspan(u + 8, end - 1);
		return 1;
	}
	return 0;
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

int exim_parse(struct parser *p, struct parser_source *s, const struct envelope *e, struct event *ev,
	       int *reason)
{
	const char *q = e->msg, *end = e->end;
	if (q >= end)
		return 0;
	if (!e->exim_native && end - q > 20 && q[4] == '-' && q[7] == '-' && q[10] == ' ' && q[13] == ':' &&
	    q[16] == ':' && q[19] == ' ') {
		/* syslog around Exim's own line: "exim[1]: 2026-11-27 20:26:42 [1] ..." */
		q += 20;
		if (q < end && *q == '[') {
			const char *r = memchr(q, ']', (size_t)MXW_MIN(end - q, 12));
			if (r && r + 1 < end && r[1] == ' ')
				q = r + 2;
		}
	}
	size_t ml = ex_msgid(q, end);
	if (ml) {
		ev->queue_id = mkspan(q, q + ml);
		q += ml + 1;
		if (HAS(q, end, "<= ")) {
			/* arrival: "<= sender H=host ... P=esmtp S=123" (sender is client text) */
			const char *h;
			if (ex_host_agreed(p, q + 3, end, " H=", 3, ev, &h) < 0)
				return 0; /* local submission (no H=), or ambiguous */
			ev->kind = EV_ACCEPT;
			ev->stage = ST_DATA;
			const char *se = q + 3;
			const char *sp = memchr(se, ' ', (size_t)(end - se));
			ev->from = mkspan(se, sp ? sp : end);
			const char *a = FIND(h, end, " A=");
			if (a) {
				ev->auth_ok = true;
				const char *ue = memchr(a + 3, ' ', (size_t)(end - a - 3));
				const char *colon = memchr(a + 3, ':', (size_t)((ue ? ue : end) - a - 3));
				if (colon)
					ev->user = mkspan(colon + 1, ue ? ue : end);
			}
			return 1;
		}
		if (!HAS(q, end, "H="))
			return 0; /* deliveries (=>, ->, ==, **), Completed, frozen ... */
	}
	int rc = ex_body(p, q, end, ev, reason);
	if (rc == 1 && ev->kind != EV_CONNECT && ev->kind != EV_DISCONNECT && ev->kind != EV_ACCEPT &&
	    exim_dedup_seen(p, s, e->msg, end, e->ts_us))
		return 0; /* the rejectlog's copy of a mainlog line (or vice versa) */
	return rc;
}

/*
 * sendmail.c - Sendmail (sm-mta) messages: ruleset rejections, lost input
 * channels, commands never issued, pre-greeting traffic, AUTH failures and
 * accepted mail (from= lines with relay=).
 *
 * The client is the relay= field Sendmail writes: "relay=[ip]",
 * "relay=name [ip]", "relay=name [ip] (may be forged)", "[IPv6:...]".
 * arg1= holds the client's address and may imitate ", relay=[ip], reject=",
 * so it is skipped with quote awareness; where relay= is the last field, it
 * must reach the end of the line.
 *
 * Sendmail logs a recipient it refuses ("QID: <addr>... User unknown")
 * before the line that names the client ("QID: from=..., relay=[ip]"):
 * that rejection is an event without a client (has_ip false) that carries
 * the queue id; the aggregator holds it until a line of the same syslog
 * host and queue id names the client. Nothing in the address decides the
 * client. A from= line with nrcpts=0 closes an envelope that got no
 * recipient: it names the client but is no accepted mail (kind connect,
 * stage mail: a note on the connection, like postscreen's PASS lines).
 */
#include "parsers/internal.h"

/* "[ip]" / "name [ip]" [" (may be forged)"]; advances *pp. */
static int sm_relay(struct parser *p, const char **pp, const char *end, struct event *ev)
{
	const char *q = *pp;
	struct span name = SPAN_NULL;
	if (q < end && *q != '[') {
		const char *n = q;
		while (q < end && *q != ' ' && *q != '[' && *q != ',' && *q != ']')
			q++;
		if (q >= end || *q != ' ' || q == n)
			return -1;
		name = mkspan(n, q);
		q++;
	}
	struct span ip;
	if (scan_bracket(&q, end, &ip) != PARSE_R_NONE)
		return -1;
	if (ip.n > 5 && memcmp(ip.p, "IPv6:", 5) == 0) {
		ip.p += 5;
		ip.n -= 5;
	}
	struct event tmp = *ev;
	if (ev_set_ip(p, &tmp, ip.p, ip.n) < 0)
		return -1;
	if (!name.p && HAS(q, end, " [")) {
		/* "relay=[ip] [ip]": the first bracket stands for the missing name */
		const char *r = q + 1;
		struct event t2 = *ev;
		if (sm_relay(p, &r, end, &t2) == 0) {
			t2.rdns = SPAN_NULL;
			*ev = t2;
			*pp = r;
			return 0;
		}
	}
	if (HAS(q, end, " (may be forged)"))
		q += 16;
	tmp.rdns = name;
	*ev = tmp;
	*pp = q;
	return 0;
}

/* The last ", relay=" whose field reaches the end of the line. */
static int sm_relay_last(struct parser *p, const char *q, const char *end, struct event *ev)
{
	const char *r = RFIND(q, end, ", relay=");
	if (!r)
		return -1;
	r += 8;
	if (sm_relay(p, &r, end, ev) < 0 || r != end)
		return -1;
	return 0;
}

/* Skip an argument: "<...>" with quoted strings, else up to ", ". */
static const char *sm_skip_arg(const char *q, const char *end)
{
	if (q < end && *q == '<') {
		bool inq = false;
		for (q++; q < end; q++) {
			if (*q == '\\' && q + 1 < end)
				q++;
			else if (*q == '"')
				inq = !inq;
			else if (*q == '>' && !inq)
				return q + 1;
		}
		return NULL;
	}
	const char *c = FIND(q, end, ", ");
	return c ? c : NULL;
}

static int sm_ruleset(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	/* "ruleset=check_rcpt, arg1=<..>, relay=.., reject=550 5.7.1 text" */
	const char *w = q + 8;
	const char *c = FIND(w, end, ", arg1=");
	if (!c || c - w > 32)
		goto bad;
	struct span rs = mkspan(w, c);
	if (rs.n == 10 && !memcmp(w, "check_rcpt", 10))
		ev->stage = ST_RCPT;
	else if (rs.n == 10 && !memcmp(w, "check_mail", 10))
		ev->stage = ST_MAIL;
	else if (rs.n == 11 && !memcmp(w, "check_relay", 11))
		ev->stage = ST_CONNECT;
	else
		ev->stage = ST_OTHER;
	const char *a = c + 7;
	const char *ae = sm_skip_arg(a, end);
	if (!ae)
		goto bad;
	struct span arg1 = mkspan(a, ae);
	if (HAS(ae, end, ", arg2=")) {
		ae = FIND(ae + 7, end, ", ");
		if (!ae)
			goto bad;
	}
	if (!HAS(ae, end, ", relay="))
		goto bad;
	const char *r = ae + 8;
	if (sm_relay(p, &r, end, ev) < 0) {
		*reason = PARSE_R_BAD_ADDRESS;
		return -1;
	}
	if (!HAS(r, end, ", reject=")) {
		return 0; /* discard=, quarantine= ... */
	}
	r += 9;
	ev->kind = EV_REJECT;
	parse_code(&r, end, ev);
	parse_dsn(&r, end, ev);
	ev->text = mkspan(r, end);
	if (arg1.n > 2 && arg1.p[0] == '<') {
		struct span addr = {arg1.p + 1, arg1.n - 2};
		if (ev->stage == ST_RCPT)
			ev->to = addr;
		else if (ev->stage == ST_MAIL)
			ev->from = addr;
	}
	const char *te = end;
	/* skip the echoed "<addr>... " */
	const char *t = r;
	const char *dots = RFIND(t, te, "... ");
	if (dots)
		t = dots + 4;
	if (FIND(t, te, "Relaying denied"))
		ev->cat = CAT_RELAY_DENIED;
	else if (FIND(t, te, "User unknown") || (ev->dsn.n == 5 && !memcmp(ev->dsn.p + 1, ".1.1", 4)))
		ev->cat = CAT_UNKNOWN_RECIPIENT;
	else if (FIND(t, te, "does not exist") || FIND(t, te, "Domain name required") ||
		 HAS(t, te, "Domain of sender address "))
		ev->cat = CAT_UNKNOWN_SENDER_DOMAIN;
	else if (FIND(t, te, "rate limit") || FIND(t, te, "Too many"))
		ev->cat = CAT_RATE_LIMITED;
	else if (FIND(t, te, "Rejected: ") || FIND(t, te, "blocked") || FIND(t, te, "listed") ||
		 FIND(t, te, "found in "))
		ev->cat = ev->stage == ST_CONNECT ? CAT_DNSBL : CAT_CLIENT_POLICY;
	else if (FIND(t, te, "reverse") || FIND(t, te, "resolve"))
		ev->cat = CAT_NO_RDNS;
	else
		ev->cat = ev->stage == ST_RCPT	 ? CAT_RECIPIENT_POLICY
			  : ev->stage == ST_MAIL ? CAT_SENDER_POLICY
						 : CAT_CLIENT_POLICY;
	return 1;
bad:
	*reason = PARSE_R_UNKNOWN_MESSAGE;
	return -1;
}

/*
 * "QID: <addr>... User unknown": the recipient refused at RCPT (Sendmail
 * answered 550 5.1.1) without the client, which the from= line of the same
 * queue id names later. Other "<addr>... text" notes give no event.
 */
static int sm_rcpt_unknown(const char *q, const char *end, struct event *ev)
{
	const char *ae = sm_skip_arg(q, end);
	if (!ae || !HAS(ae, end, "... User unknown") || ae + 16 != end)
		return 0;
	ev->kind = EV_REJECT;
	ev->stage = ST_RCPT;
	ev->cat = CAT_UNKNOWN_RECIPIENT;
	ev->code = 550;
	ev->to = (struct span){q + 1, (uint32_t)(ae - q - 2)};
	ev->text = mkspan(ae + 4, end);
	return 1;
}

int sendmail_parse(struct parser *p, const struct envelope *e, struct event *ev, int *reason)
{
	const char *q = e->msg, *end = e->end;
	/* optional queue id "60AA3a1B005001: " */
	const char *r = q;
	while (r < end && r - q < 20 &&
	       ((*r >= '0' && *r <= '9') || (*r >= 'A' && *r <= 'Z') || (*r >= 'a' && *r <= 'z')))
		r++;
	if (r - q >= 8 && HAS(r, end, ": ")) {
		ev->queue_id = mkspan(q, r);
		q = r + 2;
	}
	if (HAS(q, end, "ruleset="))
		return sm_ruleset(p, q, end, ev, reason);
	if (HAS(q, end, "lost input channel from ")) {
		const char *h = q + 24;
		if (sm_relay(p, &h, end, ev) < 0)
			goto bad;
		ev->kind = EV_LOST;
		const char *a = FIND(h, end, " after ");
		ev->stage = ST_OTHER;
		if (a) {
			const char *w = a + 7;
			if (HAS(w, end, "rcpt"))
				ev->stage = ST_RCPT;
			else if (HAS(w, end, "mail"))
				ev->stage = ST_MAIL;
			else if (HAS(w, end, "data"))
				ev->stage = ST_DATA;
			else if (HAS(w, end, "greeting") || HAS(w, end, "connect"))
				ev->stage = ST_CONNECT;
		}
		ev->text = (struct span){q, 18};
		return 1;
	}
	if (HAS(q, end, "rejecting commands from ")) {
		const char *h = q + 24;
		if (sm_relay(p, &h, end, ev) < 0)
			goto bad;
		if (!HAS(h, end, " due to pre-greeting traffic"))
			return 0;
		ev->kind = EV_PROTOCOL;
		ev->stage = ST_CONNECT;
		ev->cat = CAT_PREGREET;
		ev->code = 554;
		ev->text = mkspan(h + 1, end);
		return 1;
	}
	if (HAS(q, end, "timeout waiting for input from ")) {
		const char *h = q + 31;
		if (sm_relay(p, &h, end, ev) < 0)
			goto bad;
		ev->kind = EV_LOST;
		ev->stage = ST_OTHER;
		ev->text = (struct span){q, 25};
		return 1;
	}
	if (HAS(q, end, "AUTH failure (")) {
		if (sm_relay_last(p, q, end, ev) < 0)
			return 0;
		ev->kind = EV_AUTH_FAILURE;
		ev->stage = ST_AUTH;
		ev->cat = CAT_AUTH;
		ev->code = 535;
		ev->text = mkspan(q, RFIND(q, end, ", relay="));
		return 1;
	}
	if (HAS(q, end, "from=")) {
		if (sm_relay_last(p, q, end, ev) < 0)
			return 0; /* local submission */
		/* nrcpts=0: MAIL was given, no recipient was accepted */
		const char *nr = FIND(q, end, ", nrcpts=");
		bool none = nr && HAS(nr + 9, end, "0,");
		ev->kind = none ? EV_CONNECT : EV_ACCEPT;
		ev->stage = none ? ST_MAIL : ST_DATA;
		const char *fe = FIND(q + 5, end, ", size=");
		ev->from = mkspan(q + 5, fe ? fe : q + 5);
		if (ev->from.n >= 2 && ev->from.p[0] == '<' && ev->from.p[ev->from.n - 1] == '>') {
			ev->from.p++;
			ev->from.n -= 2;
		}
		return 1;
	}
	if (HAS(q, end, "to=") || HAS(q, end, "SYSERR") || HAS(q, end, "starting daemon"))
		return 0;
	if (*q == '<' && ev->queue_id.n)
		return sm_rcpt_unknown(q, end, ev);
	/* "[ip]: possible SMTP attack: ..." and "name [ip] did not issue MAIL/..." */
	const char *h = q;
	struct event save = *ev;
	if (sm_relay(p, &h, end, ev) == 0) {
		if (HAS(h, end, ": possible SMTP attack: ")) {
			ev->kind = EV_PROTOCOL;
			ev->stage = ST_OTHER;
			ev->cat = CAT_OTHER;
			ev->text = mkspan(h + 2, end);
			return 1;
		}
		if (HAS(h, end, ": probable open proxy: command=")) {
			/* an HTTP proxy request (CONNECT, GET) sent to port 25 */
			ev->kind = EV_PROTOCOL;
			ev->stage = ST_CONNECT;
			ev->cat = CAT_NON_SMTP;
			ev->text = mkspan(h + 2, end);
			return 1;
		}
		if (HAS(h, end, " did not issue ")) {
			ev->kind = EV_PROTOCOL;
			ev->stage = ST_OTHER;
			ev->cat = CAT_OTHER;
			ev->text = mkspan(h + 1, end);
			return 1;
		}
		*ev = save;
	}
	return 0;
bad:
	*reason = PARSE_R_BAD_ADDRESS;
	return -1;
}

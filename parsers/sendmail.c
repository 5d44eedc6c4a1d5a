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
 * recipient: it names the client (and so attributes the refusals of its
 * queue id) but is neither accepted mail nor a connection (kind note,
 * stage mail, no category): one connection can carry thousands of them.
 */
#include "parsers/internal.h"

/* "[ip]" / "name [ip]" [" (may be forged)"]; advances *pp. */
static int sm_relay(struct parser *p, const char **pp, const char *end, struct event *ev)
{
	const char *q = *pp;
	struct span name = SPAN_NULL;
	while (q < end && *q == ' ' && q - *pp < 2)
		q++; /* "from  [ip]": no name */
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
	const char *v6 = SKIP(ip.p, ip.p + ip.n, "IPv6:");
	if (v6)
		ip = mkspan(v6, ip.p + ip.n);
	struct event tmp = *ev;
	if (ev_set_ip(p, &tmp, ip.p, ip.n) < 0)
		return -1;
	const char *r = name.p ? NULL : SKIP(q, end, " ");
	if (r && r < end && *r == '[') {
		/* "relay=[ip] [ip]": the first bracket stands for the missing name */
		struct event t2 = *ev;
		if (sm_relay(p, &r, end, &t2) == 0) {
			t2.rdns = SPAN_NULL;
			*ev = t2;
			*pp = r;
			return 0;
		}
	}
	const char *f = SKIP(q, end, " (may be forged)");
	if (f)
		q = f;
	tmp.rdns = name;
	*ev = tmp;
	*pp = q;
	return 0;
}

/* The last ", relay=" whose field reaches the end of the line. */
static int sm_relay_last(struct parser *p, const char *q, const char *end, struct event *ev)
{
	const char *r = RFIND_AFTER(q, end, ", relay=");
	if (!r || sm_relay(p, &r, end, ev) < 0 || r != end)
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
	return FIND(q, end, ", ");
}

/* The category of a ruleset rejection from its text (after the echoed
 * "<addr>... ", which is the client's) and its DSN. */
static enum ev_category sm_category(const char *t, const char *te, const struct event *ev)
{
	const char *dots = RFIND_AFTER(t, te, "... ");
	if (dots)
		t = dots;
	if (FIND(t, te, "Cannot resolve PTR") || (FIND(t, te, "reverse") && !FIND(t, te, "Relaying denied")))
		return CAT_NO_RDNS;
	if (FIND(t, te, "Relaying denied") || FIND(t, te, "Relaying temporarily denied"))
		return CAT_RELAY_DENIED;
	if (FIND(t, te, "User unknown") || (ev->dsn.n == 5 && !memcmp(ev->dsn.p + 1, ".1.1", 4)))
		return CAT_UNKNOWN_RECIPIENT;
	if (FIND(t, te, "does not exist") || FIND(t, te, "Domain name required") ||
	    SKIP(t, te, "Domain of sender address ") || FIND(t, te, "does not resolve"))
		return CAT_UNKNOWN_SENDER_DOMAIN;
	if (FIND(t, te, "rate limit") || FIND(t, te, "Too many") || FIND(t, te, "limit exceeded"))
		return CAT_RATE_LIMITED;
	if (FIND(t, te, "listed at") || FIND(t, te, "blacklist") || FIND(t, te, "RBL") ||
	    FIND(t, te, " PBL") || FIND(t, te, "blocked using") || FIND(t, te, "found in "))
		return CAT_DNSBL;
	if (FIND(t, te, "Rejected: ") || FIND(t, te, "blocked") || FIND(t, te, "listed"))
		return CAT_CLIENT_POLICY;
	return ev->stage == ST_RCPT   ? CAT_RECIPIENT_POLICY
	       : ev->stage == ST_MAIL ? CAT_SENDER_POLICY
				      : CAT_CLIENT_POLICY;
}

static int sm_ruleset(struct parser *p, const char *q, const char *end, struct event *ev, int *reason)
{
	/* "ruleset=check_rcpt, arg1=<..>, relay=.., reject=550 5.7.1 text" */
	const char *c = FIND(q, end, ", arg1=");
	if (!c || c - q > 32)
		goto bad;
	struct span rs = mkspan(q, c);
	static const struct {
		const char *name;
		size_t n;
		enum ev_stage st;
	} sets[] = {
	    {LIT("check_rcpt"), ST_RCPT}, {LIT("check_mail"), ST_MAIL}, {LIT("check_relay"), ST_CONNECT}};
	ev->stage = ST_OTHER;
	for (size_t i = 0; i < MXW_ARRAY_LEN(sets); i++)
		if (rs.n == sets[i].n && !memcmp(rs.p, sets[i].name, rs.n))
			ev->stage = sets[i].st;
	const char *a = SKIP(c, end, ", arg1=");
	const char *ae = sm_skip_arg(a, end);
	if (!ae)
		goto bad;
	struct span arg1 = mkspan(a, ae);
	const char *a2 = SKIP(ae, end, ", arg2=");
	if (a2 && !(ae = FIND(a2, end, ", ")))
		goto bad;
	const char *r = SKIP(ae, end, ", relay=");
	if (!r)
		goto bad;
	if (sm_relay(p, &r, end, ev) < 0) {
		*reason = PARSE_R_BAD_ADDRESS;
		return -1;
	}
	if (!(r = SKIP(r, end, ", reject=")))
		return 0; /* discard=, quarantine= ... */
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
	ev->cat = sm_category(r, end, ev);
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
	const char *t = ae ? SKIP(ae, end, "... ") : NULL;
	if (!t || (SKIP(t, end, "User unknown") != end && SKIP(t, end, "No such user here") != end))
		return 0;
	ev->kind = EV_REJECT;
	ev->stage = ST_RCPT;
	ev->cat = CAT_UNKNOWN_RECIPIENT;
	ev->code = 550;
	ev->to = mkspan(q + 1, ae - 1);
	ev->text = mkspan(t, end);
	return 1;
}

/* "from=<sender>, size=N, class=N, nrcpts=N, ..., relay=name [ip]" */
static int sm_from(struct parser *p, const char *q, const char *end, struct event *ev)
{
	if (sm_relay_last(p, q, end, ev) < 0)
		return 0; /* local submission */
	unsigned n = 0;
	const char *nr = FIND_AFTER(q, end, ", nrcpts=");
	for (const char *d = nr; d && d < end && *d >= '0' && *d <= '9' && n < 65535; d++)
		n = n * 10 + (unsigned)(*d - '0');
	if (nr && n == 0) {
		/* MAIL was given, no recipient was accepted: names the client
		 * of the queue id, neither mail nor a connection */
		ev->kind = EV_NOTE;
		ev->stage = ST_MAIL;
	} else {
		ev->kind = EV_ACCEPT;
		ev->stage = ST_DATA;
		ev->nrcpt = (uint16_t)MXW_MIN(n, 65535u);
		/* "auth=PLAIN": the client authenticated (the mechanism; "NONE"
		 * when it did not) */
		const char *au = FIND_AFTER(q, end, ", auth=");
		ev->auth_ok = au && au < end && *au != ',' && !SKIP(au, end, "NONE");
	}
	const char *fe = FIND(q, end, ", size=");
	ev->from = mkspan(q, fe ? fe : q);
	if (ev->from.n >= 2 && ev->from.p[0] == '<' && ev->from.p[ev->from.n - 1] == '>') {
		ev->from.p++;
		ev->from.n -= 2;
	}
	return 1;
}

/* "lost input channel from X to DAEMON after CMD" */
static enum ev_stage sm_after(const char *q, const char *end)
{
	const char *w = FIND_AFTER(q, end, " after ");
	if (!w)
		return ST_OTHER;
	if (SKIP(w, end, "rcpt"))
		return ST_RCPT;
	if (SKIP(w, end, "mail"))
		return ST_MAIL;
	if (SKIP(w, end, "data"))
		return ST_DATA;
	if (SKIP(w, end, "greeting") || SKIP(w, end, "connect"))
		return ST_CONNECT;
	return ST_OTHER;
}

/* Lines that start with the client ("name [ip]" or "[ip]", " (may be
 * forged)"): "CLIENT: possible SMTP attack: command=AUTH, count=5",
 * "CLIENT: probable open proxy: command=...", "CLIENT: Possible SMTP RCPT
 * flood, throttling.", "CLIENT: EXPN root [rejected]", "CLIENT did not
 * issue MAIL/EXPN/VRFY/ETRN during connection to MTA". */
static int sm_client_first(struct parser *p, const char *q, const char *end, struct event *ev)
{
	const char *h = q, *t;
	struct event save = *ev;
	if (sm_relay(p, &h, end, ev) < 0)
		return 0;
	if ((t = SKIP(h, end, ": possible SMTP attack: command=")) != NULL) {
		const char *w = t;
		while (w < end && *w >= 'A' && *w <= 'Z')
			w++;
		ev->kind = EV_PROTOCOL;
		ev->stage = stage_of_command(t, (size_t)(w - t));
		ev->cat = CAT_TOO_MANY_ERRORS;
		ev->text = mkspan(SKIP(h, end, ": "), end);
		return 1;
	}
	if ((t = SKIP(h, end, ": probable open proxy: command=")) != NULL) {
		/* an HTTP proxy request (CONNECT, GET) sent to port 25 */
		ev->kind = EV_PROTOCOL;
		ev->stage = ST_CONNECT;
		ev->cat = CAT_NON_SMTP;
		ev->text = mkspan(SKIP(h, end, ": "), end);
		return 1;
	}
	if ((t = SKIP(h, end, " did not issue ")) != NULL) {
		ev->kind = EV_PROTOCOL;
		ev->stage = ST_OTHER;
		ev->cat = CAT_NO_MAIL;
		ev->text = mkspan(SKIP(h, end, " "), end);
		return 1;
	}
	if ((t = SKIP(h, end, ": Possible SMTP RCPT flood, throttling.")) != NULL) {
		/* BadRcptThrottle: too many refused recipients in one connection */
		ev->kind = EV_PROTOCOL;
		ev->stage = ST_RCPT;
		ev->cat = CAT_TOO_MANY_ERRORS;
		ev->text = mkspan(SKIP(h, end, ": "), t);
		return 1;
	}
	if ((t = SKIP(h, end, ": ")) != NULL && end - t > 11 && SKIP(end - 11, end, " [rejected]")) {
		/* EXPN or VRFY refused (PrivacyOptions noexpn, novrfy): the
		 * command line after the client is the client's text */
		ev->kind = EV_REJECT;
		ev->stage = ST_OTHER;
		ev->cat = CAT_OTHER;
		ev->text = mkspan(t, end);
		return 1;
	}
	*ev = save;
	return 0;
}

int sendmail_parse(struct parser *p, const struct envelope *e, struct event *ev, int *reason)
{
	const char *q = e->msg, *end = e->end, *h;
	/* optional queue id "60AA3a1B005001: " */
	const char *r = q;
	while (r < end && r - q < 20 &&
	       ((*r >= '0' && *r <= '9') || (*r >= 'A' && *r <= 'Z') || (*r >= 'a' && *r <= 'z')))
		r++;
	const char *after = r - q >= 8 ? SKIP(r, end, ": ") : NULL;
	if (after) {
		ev->queue_id = mkspan(q, r);
		q = after;
	}
	if (q >= end)
		return 0; /* an empty message (fuzz finding: *q read past the end) */
	if ((h = SKIP(q, end, "ruleset=")) != NULL)
		return sm_ruleset(p, h, end, ev, reason);
	if ((h = SKIP(q, end, "from=")) != NULL)
		return sm_from(p, h, end, ev);
	if ((h = SKIP(q, end, "lost input channel from ")) != NULL) {
		if (sm_relay(p, &h, end, ev) < 0)
			goto bad;
		ev->kind = EV_LOST;
		ev->stage = sm_after(h, end);
		ev->text = SPAN_LIT("lost input channel");
		return 1;
	}
	if ((h = SKIP(q, end, "rejecting commands from ")) != NULL) {
		if (sm_relay(p, &h, end, ev) < 0)
			goto bad;
		if (!SKIP(h, end, " due to pre-greeting traffic"))
			return 0;
		ev->kind = EV_PROTOCOL;
		ev->stage = ST_CONNECT;
		ev->cat = CAT_PREGREET;
		ev->code = 554;
		ev->text = mkspan(SKIP(h, end, " "), end);
		return 1;
	}
	if ((h = SKIP(q, end, "timeout waiting for input from ")) != NULL) {
		if (sm_relay(p, &h, end, ev) < 0)
			goto bad;
		ev->kind = EV_LOST;
		ev->stage = ST_OTHER;
		ev->text = SPAN_LIT("timeout waiting for input");
		return 1;
	}
	if (SKIP(q, end, "AUTH failure (")) {
		if (sm_relay_last(p, q, end, ev) < 0)
			return 0;
		ev->kind = EV_AUTH_FAILURE;
		ev->stage = ST_AUTH;
		ev->cat = CAT_AUTH;
		ev->code = 535;
		ev->text = mkspan(q, RFIND(q, end, ", relay="));
		return 1;
	}
	if (SKIP(q, end, "to=") || SKIP(q, end, "SYSERR") || SKIP(q, end, "starting daemon"))
		return 0;
	if (*q == '<')
		return ev->queue_id.n ? sm_rcpt_unknown(q, end, ev) : 0;
	return sm_client_first(p, q, end, ev);
bad:
	*reason = PARSE_R_BAD_ADDRESS;
	return -1;
}

/*
 * category.c - the category of a rejection from its reply text and
 * enhanced status code. The text echoes attacker input first ("<addr>:
 * Recipient address rejected: ..."), so Postfix texts are judged after
 * the echoed address; the category never decides which IP is blamed.
 */
#include "parsers/internal.h"

#define IN(p, end, lit) (FIND((p), (end), (lit)) != NULL)

/* A content scanner's verdict on the message (after DNSBL names such as
 * "spamhaus" were ruled out): only once the message was seen, at DATA or
 * after it ("your network is listed for spam" at RCPT is about the client). */
static bool content_words(const char *t, const char *end, enum ev_stage st)
{
	if (st != ST_DATA && st != ST_END_OF_DATA)
		return false;
	return IN(t, end, "spam") || IN(t, end, "Spam") || IN(t, end, "SPAM") || IN(t, end, "virus") ||
	       IN(t, end, "Virus") || IN(t, end, "malware") || IN(t, end, "Malware") ||
	       IN(t, end, "infected");
}

static bool dsn_is(struct span dsn, const char *s)
{
	size_t n = strlen(s);
	return dsn.n >= n && memcmp(dsn.p + 1, s + 1, n - 1) == 0 && dsn.n == n;
}

enum ev_category category_of_postfix(const char *t, const char *end, struct span dsn, enum ev_stage st)
{
	if (!t)
		return CAT_OTHER;
	/* skip the echoed "<address>: " (its content is the client's) */
	if (t < end && *t == '<') {
		const char *c = RFIND_AFTER(t, end, ">: ");
		if (c)
			t = c;
	}
	if (IN(t, end, "blocked using ") || IN(t, end, "listed by "))
		return CAT_DNSBL;
	if (IN(t, end, "reylist") || IN(t, end, "reylisted"))
		return CAT_GREYLISTED;
	if (IN(t, end, "Relay access denied"))
		return CAT_RELAY_DENIED;
	if (IN(t, end, "User unknown") || IN(t, end, "user unknown") || dsn_is(dsn, "5.1.1"))
		return CAT_UNKNOWN_RECIPIENT;
	if (IN(t, end, "Domain not found") || dsn_is(dsn, "4.1.8") || dsn_is(dsn, "5.1.8"))
		return CAT_UNKNOWN_SENDER_DOMAIN;
	if (IN(t, end, "cannot find your ") || dsn_is(dsn, "4.7.25") || dsn_is(dsn, "5.7.25"))
		return CAT_NO_RDNS;
	if (IN(t, end, "Helo command rejected"))
		return CAT_HELO;
	if (IN(t, end, "size exceeds") || dsn_is(dsn, "5.3.4") || dsn_is(dsn, "4.3.4"))
		return CAT_SIZE;
	if (IN(t, end, "pipelining"))
		return CAT_PIPELINING;
	if (IN(t, end, "rate limit") || IN(t, end, "too many connections") ||
	    IN(t, end, "Too many connections"))
		return CAT_RATE_LIMITED;
	if (IN(t, end, "Sender address rejected"))
		return CAT_SENDER_POLICY;
	if (IN(t, end, "Recipient address rejected"))
		return CAT_RECIPIENT_POLICY;
	if (IN(t, end, "Client host rejected"))
		return CAT_CLIENT_POLICY;
	if (content_words(t, end, st))
		return CAT_CONTENT;
	return CAT_OTHER;
}

enum ev_category category_of_exim(const char *t, const char *end, enum ev_stage st)
{
	if (!t)
		t = end = "";
	if (IN(t, end, "reylist"))
		return CAT_GREYLISTED;
	if (IN(t, end, "listed at ") || IN(t, end, "RBL") || IN(t, end, "blacklisted") ||
	    IN(t, end, "blocked using") || IN(t, end, "dnsbl") || IN(t, end, "black list"))
		return CAT_DNSBL;
	if (content_words(t, end, st))
		return CAT_CONTENT;
	if (IN(t, end, "relay not permitted") || IN(t, end, "Relay not permitted"))
		return CAT_RELAY_DENIED;
	if (IN(t, end, "Unrouteable address") || IN(t, end, "Unknown user") || IN(t, end, "unknown user") ||
	    IN(t, end, "User unknown"))
		return CAT_UNKNOWN_RECIPIENT;
	if (IN(t, end, "host lookup failed") || IN(t, end, "reverse DNS") || IN(t, end, "no host name"))
		return CAT_NO_RDNS;
	if (IN(t, end, "Sender verify failed") || IN(t, end, "sender verify fail") ||
	    IN(t, end, "Domain not found") || IN(t, end, "domain not found"))
		return CAT_UNKNOWN_SENDER_DOMAIN;
	if (IN(t, end, "too big") || IN(t, end, "size"))
		return CAT_SIZE;
	if (IN(t, end, "rate limit") || IN(t, end, "ratelimit") || IN(t, end, "too many connections"))
		return CAT_RATE_LIMITED;
	switch (st) {
	case ST_HELO: return CAT_HELO;
	case ST_MAIL: return CAT_SENDER_POLICY;
	case ST_RCPT: return CAT_RECIPIENT_POLICY;
	case ST_CONNECT: return CAT_CLIENT_POLICY;
	default: return CAT_OTHER;
	}
}

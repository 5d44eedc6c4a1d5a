/*
 * event.c - names of the event and decision enums, as they appear in JSON,
 * the database and the configuration. The tables are the one place a name
 * is spelled.
 */
#include <string.h>

#include "base.h"

static const char *const mta_names[MTA__COUNT] = {"unknown", "postfix", "exim", "sendmail", "custom"};
static const char *const kind_names[EV__COUNT] = {
    "none", "connect", "disconnect", "accept", "reject", "auth_failure", "protocol", "lost", "note"};
static const char *const stage_names[ST__COUNT] = {"connect", "helo",	     "mail", "rcpt",
						   "data",    "end-of-data", "auth", "other"};
static const char *const cat_names[CAT__COUNT] = {"none",
						  "unknown_recipient",
						  "relay_denied",
						  "no_rdns",
						  "unknown_sender_domain",
						  "greylisted",
						  "rate_limited",
						  "dnsbl",
						  "helo",
						  "sender_policy",
						  "recipient_policy",
						  "client_policy",
						  "size",
						  "pipelining",
						  "pregreet",
						  "non_smtp",
						  "too_many_errors",
						  "auth",
						  "other",
						  "content",
						  "no_mail"};
static const char *const resp_names[RESP__COUNT] = {"observe", "defer", "reject", "drop"};

static const char *name_of(const char *const *t, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? t[v] : "invalid";
}

static int lookup(const char *const *t, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i], s) == 0)
			return (int)i;
	return -1;
}

const char *mta_name(enum mta m)
{
	return name_of(mta_names, MTA__COUNT, (int)m);
}
const char *ev_kind_name(enum ev_kind k)
{
	return name_of(kind_names, EV__COUNT, (int)k);
}
const char *ev_stage_name(enum ev_stage s)
{
	return name_of(stage_names, ST__COUNT, (int)s);
}
const char *ev_category_name(enum ev_category c)
{
	return name_of(cat_names, CAT__COUNT, (int)c);
}
const char *response_name(enum response r)
{
	return name_of(resp_names, RESP__COUNT, (int)r);
}
const char *scope_name(enum scope s)
{
	return s == SCOPE_CLASS ? "class" : "ip";
}

int mta_from_name(const char *s)
{
	return lookup(mta_names, MTA__COUNT, s);
}
int ev_kind_from_name(const char *s)
{
	return lookup(kind_names, EV__COUNT, s);
}
int ev_stage_from_name(const char *s)
{
	return lookup(stage_names, ST__COUNT, s);
}
int ev_category_from_name(const char *s)
{
	return lookup(cat_names, CAT__COUNT, s);
}
int response_from_name(const char *s)
{
	return lookup(resp_names, RESP__COUNT, s);
}

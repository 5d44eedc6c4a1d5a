/*
 * rdap.c - who answers for a network, by RDAP (RFC 9082, 9083): the IANA
 * bootstrap files (RFC 9224, read from local copies) name the registry's
 * server for an address; its answer for the address names entities, and
 * the e-mail address in the vCard of the one with role "abuse" is the
 * contact. Off by default ([abuse] rdap); answers are cached in the
 * database by abuse.c.
 *
 * The answer comes from the network: it is parsed with jansson, sizes are
 * bounded, and the address found must pass mail_addr_ok() before it is
 * ever used as an envelope recipient. Requests go only to the URLs of the
 * bootstrap files (http or https), redirects only to https.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "reports/internal.h"

#define RDAP_ANSWER_MAX (1 << 20)

struct rdap_entry {
	struct prefix p;
	char *url;
};

struct rdap {
	struct rdap_entry *v;
	size_t n;
};

static int load_file(struct rdap *r, const char *path, struct buf *err)
{
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		buf_printf(err, "%s:%d: not an RDAP bootstrap file: %s", path, je.line, je.text);
		return -1;
	}
	json_t *services = json_object_get(root, "services");
	if (!json_is_array(services)) {
		buf_printf(err, "%s: not an RDAP bootstrap file (no services)", path);
		json_decref(root);
		return -1;
	}
	size_t i;
	json_t *svc;
	json_array_foreach(services, i, svc)
	{
		json_t *nets = json_array_get(svc, 0), *urls = json_array_get(svc, 1);
		const char *url = NULL;
		size_t j;
		json_t *u;
		json_array_foreach(urls, j, u)
		{ /* prefer https; the file lists http too */
			const char *s = json_string_value(u);
			if (s && (!url || strncmp(s, "https://", 8) == 0) &&
			    (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0))
				url = s;
		}
		if (!url)
			continue;
		json_array_foreach(nets, j, u)
		{
			const char *s = json_string_value(u);
			struct prefix p;
			if (!s || prefix_parse(&p, s, strlen(s), false) < 0)
				continue;
			r->v = xrealloc(r->v, (r->n + 1) * sizeof *r->v);
			r->v[r->n].p = p;
			r->v[r->n].url = xstrdup(url);
			r->n++;
		}
	}
	json_decref(root);
	return 0;
}

struct rdap *rdap_new(const struct abuse_conf *a, struct buf *err)
{
	static bool curl_ready;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
			buf_printf(err, "cannot initialise libcurl");
			return NULL;
		}
		curl_ready = true;
	}
	struct rdap *r = xcalloc(1, sizeof *r);
	for (size_t i = 0; i < a->rdap_bootstrap.n; i++)
		if (load_file(r, a->rdap_bootstrap.v[i], err) < 0) {
			rdap_free(r);
			return NULL;
		}
	return r;
}

void rdap_free(struct rdap *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].url);
	free(r->v);
	free(r);
}

const char *rdap_server(const struct rdap *r, const struct ipaddr *ip)
{
	const struct rdap_entry *best = NULL;
	for (size_t i = 0; r && i < r->n; i++)
		if (prefix_contains(&r->v[i].p, ip) && (!best || r->v[i].p.len > best->p.len))
			best = &r->v[i];
	return best ? best->url : NULL;
}

/* The first "email" value of a jCard ["vcard", [[name, params, type, value], ...]]. */
static const char *vcard_email(const json_t *card)
{
	size_t i;
	json_t *prop;
	json_array_foreach(json_array_get(card, 1), i, prop)
	{
		const char *name = json_string_value(json_array_get(prop, 0));
		const char *v = json_string_value(json_array_get(prop, 3));
		if (name && v && strcmp(name, "email") == 0)
			return v;
	}
	return NULL;
}

static bool has_role(const json_t *ent, const char *role)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(ent, "roles"), i, r)
	{
		const char *s = json_string_value(r);
		if (s && strcmp(s, role) == 0)
			return true;
	}
	return false;
}

int rdap_parse(const char *text, size_t len, const struct ipaddr *ip, char *contact, size_t csz,
	       struct ipaddr *lo, struct ipaddr *hi)
{
	json_t *root = json_loadb(text, len, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	contact[0] = '\0';
	*lo = *hi = *ip;
	const char *s = json_string_value(json_object_get(root, "startAddress"));
	const char *e = json_string_value(json_object_get(root, "endAddress"));
	struct ipaddr a, b;
	if (s && e && ipaddr_parse(&a, s, strlen(s)) == 0 && ipaddr_parse(&b, e, strlen(e)) == 0 &&
	    a.family == ip->family && b.family == ip->family && ipaddr_cmp(&a, ip) <= 0 &&
	    ipaddr_cmp(ip, &b) <= 0)
		*lo = a, *hi = b;
	/* breadth first: the abuse contact nearest the network wins */
	json_t *level = json_incref(json_object_get(root, "entities"));
	for (int depth = 0; depth < 8 && json_array_size(level) && !contact[0]; depth++) {
		json_t *next = json_array();
		size_t i;
		json_t *ent;
		json_array_foreach(level, i, ent)
		{
			if (!contact[0] && has_role(ent, "abuse")) {
				const char *m = vcard_email(json_object_get(ent, "vcardArray"));
				if (m && mail_addr_ok(m))
					str_copy(contact, csz, m, strlen(m));
			}
			size_t j;
			json_t *sub;
			json_array_foreach(json_object_get(ent, "entities"), j, sub)
			    json_array_append(next, sub);
		}
		json_decref(level);
		level = next;
	}
	json_decref(level);
	json_decref(root);
	return 0;
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t k = size * n;
	if (b->len + k > RDAP_ANSWER_MAX)
		return 0; /* curl stops with a write error */
	buf_append(b, p, k);
	return k;
}

int rdap_query(const struct rdap *r, const struct abuse_conf *a, const struct ipaddr *ip, char *contact,
	       size_t csz, struct ipaddr *lo, struct ipaddr *hi, struct buf *err)
{
	const char *base = rdap_server(r, ip);
	if (!base) {
		buf_printf(err, "no RDAP server for the address in the bootstrap files");
		return -1;
	}
	char addr[IPADDR_STRLEN];
	ipaddr_format(ip, addr);
	struct buf url = BUF_INIT, body = BUF_INIT;
	buf_printf(&url, "%s%sip/%s", base, base[strlen(base) - 1] == '/' ? "" : "/", addr);
	CURL *h = curl_easy_init();
	if (!h) {
		buf_printf(err, "cannot start a request");
		buf_free(&url);
		return -1;
	}
	char ua[64];
	snprintf(ua, sizeof ua, "mxwarden/%s", MXWARDEN_VERSION);
	struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/rdap+json, application/json");
	curl_easy_setopt(h, CURLOPT_URL, buf_str(&url));
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)(a->rdap_timeout > 0 ? a->rdap_timeout : 10));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdr);
	int rc = -1;
	if (cc != CURLE_OK)
		buf_printf(err, "%s: %s", buf_str(&url), curl_easy_strerror(cc));
	else if (status != 200 && status != 404)
		buf_printf(err, "%s: HTTP status %ld", buf_str(&url), status);
	else if (status == 404) /* no such network registered: no contact */
		contact[0] = '\0', *lo = *hi = *ip, rc = 0;
	else if (rdap_parse(body.data ? body.data : "", body.len, ip, contact, csz, lo, hi) < 0)
		buf_printf(err, "%s: the answer is not an RDAP object", buf_str(&url));
	else
		rc = 0;
	buf_free(&url);
	buf_free(&body);
	return rc;
}

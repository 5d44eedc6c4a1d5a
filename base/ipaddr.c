/*
 * ipaddr.c - strict IPv4/IPv6 address and prefix parsing, canonical
 * formatting, containment, and the IP class of an address.
 *
 * Strictness matters: an address that a log line or a user typed is either
 * exactly one canonical address or nothing. "01.2.3.4", "1.2.3",
 * "999.1.1.1" and trailing bytes are refused; IPv4-mapped IPv6 folds to
 * IPv4 so that one sender has one key.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

static int parse_v4(const char *s, size_t n, uint8_t out[4])
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
		size_t start = i;
		unsigned v = 0;
		while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 4)
			v = v * 10 + (unsigned)(s[i++] - '0');
		size_t len = i - start;
		if (len == 0 || len > 3 || v > 255 || (len > 1 && s[start] == '0'))
			return -1;
		out[part] = (uint8_t)v;
	}
	return i == n ? 0 : -1;
}

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int ipaddr_parse(struct ipaddr *out, const char *s, size_t n)
{
	memset(out, 0, sizeof *out);
	if (n == 0 || n > 64)
		return -1;
	if (memchr(s, ':', n) == NULL) {
		if (parse_v4(s, n, out->a) < 0)
			return -1;
		out->family = IPADDR_V4;
		return 0;
	}
	char tmp[65];
	size_t k = n;
	const char *pct = memchr(s, '%', n);
	if (pct) {
		k = (size_t)(pct - s);
		/* a zone index is one or more name characters */
		if (k + 1 == n)
			return -1;
		for (size_t j = k + 1; j < n; j++) {
			unsigned char c = (unsigned char)s[j];
			if (c <= 0x20 || c >= 0x7f || c == '%' || c == '[' || c == ']' || c == '/')
				return -1;
		}
	}
	for (size_t j = 0; j < k; j++) {
		char c = s[j];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
		      c == ':' || c == '.'))
			return -1;
	}
	/* glibc's inet_pton accepts leading zeros in an embedded IPv4 part's
	 * siblings; check the dotted tail with our strict parser. */
	const char *lastcolon = NULL;
	for (size_t j = 0; j < k; j++)
		if (s[j] == ':')
			lastcolon = s + j;
	if (lastcolon && memchr(lastcolon, '.', k - (size_t)(lastcolon - s))) {
		uint8_t q[4];
		if (parse_v4(lastcolon + 1, k - (size_t)(lastcolon + 1 - s), q) < 0)
			return -1;
	}
	memcpy(tmp, s, k);
	tmp[k] = '\0';
	struct in6_addr a6;
	if (inet_pton(AF_INET6, tmp, &a6) != 1)
		return -1;
	if (memcmp(a6.s6_addr, v4mapped, 12) == 0) {
		out->family = IPADDR_V4;
		memcpy(out->a, a6.s6_addr + 12, 4);
	} else {
		out->family = IPADDR_V6;
		memcpy(out->a, a6.s6_addr, 16);
	}
	return 0;
}

/* RFC 5952 text for IPv6: lowercase, no leading zeros, the longest run of
 * two or more zero groups (the first on a tie) as "::", and never the mixed
 * dotted form (glibc prints ::a.b.c.d for the deprecated compatible range). */
static size_t format_v6(const uint8_t a[16], char *out)
{
	unsigned g[8];
	for (int i = 0; i < 8; i++)
		g[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
	int best = -1, bestlen = 0;
	for (int i = 0; i < 8;) {
		if (g[i]) {
			i++;
			continue;
		}
		int j = i;
		while (j < 8 && !g[j])
			j++;
		if (j - i > bestlen && j - i >= 2) {
			best = i;
			bestlen = j - i;
		}
		i = j;
	}
	size_t n = 0;
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			out[n++] = ':';
			if (i == 0)
				out[n++] = ':';
			i += bestlen - 1;
			continue;
		}
		n += (size_t)snprintf(out + n, IPADDR_STRLEN - n, "%x%s", g[i], i < 7 ? ":" : "");
	}
	out[n] = '\0';
	return n;
}

size_t ipaddr_format(const struct ipaddr *ip, char *out)
{
	if (ip->family == IPADDR_V4)
		return (size_t)snprintf(out, IPADDR_STRLEN, "%u.%u.%u.%u", ip->a[0], ip->a[1], ip->a[2],
					ip->a[3]);
	if (ip->family == IPADDR_V6)
		return format_v6(ip->a, out);
	out[0] = '-';
	out[1] = '\0';
	return 1;
}

int ipaddr_cmp(const struct ipaddr *x, const struct ipaddr *y)
{
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return memcmp(x->a, y->a, 16);
}

bool ipaddr_is_loopback(const struct ipaddr *ip)
{
	static const uint8_t v6lo[16] = {[15] = 1};
	if (ip->family == IPADDR_V4)
		return ip->a[0] == 127;
	return ip->family == IPADDR_V6 && memcmp(ip->a, v6lo, 16) == 0;
}

bool addrport_loopback(const char *s)
{
	const char *colon = strrchr(s, ':');
	const char *h = s;
	size_t n = colon ? (size_t)(colon - s) : 0;
	if (n == 0)
		return true; /* "PORT" or ":PORT": the receiver binds 127.0.0.1 */
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	struct ipaddr ip;
	return ipaddr_parse(&ip, h, n) == 0 && ipaddr_is_loopback(&ip);
}

void bind_error_explain(struct buf *out, const char *addr, unsigned port, int e)
{
	if ((e == EACCES || e == EPERM) && port > 0 && port < 1024)
		buf_printf(
		    out,
		    "cannot listen on %s: port %u is privileged (below 1024): start mxwarden as root, grant "
		    "it "
		    "CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE), or choose a "
		    "port from 1024 up",
		    addr, port);
	else if (e == EADDRINUSE)
		buf_printf(
		    out,
		    "cannot listen on %s: the address is in use (another program, or another mxwarden, "
		    "listens there)",
		    addr);
	else if (e == EADDRNOTAVAIL)
		buf_printf(out, "cannot listen on %s: this host has no interface with that address", addr);
	else
		buf_printf(out, "cannot listen on %s: %s", addr, strerror(e));
}

uint64_t ipaddr_hash(const struct ipaddr *ip)
{
	/* FNV-1a over family and bytes, then a final avalanche (splitmix64). */
	uint64_t h = 1469598103934665603ULL ^ ip->family;
	for (int i = 0; i < 16; i++) {
		h ^= ip->a[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

static void mask_bits(uint8_t a[16], unsigned len, unsigned bits)
{
	for (unsigned i = 0; i < bits / 8; i++) {
		unsigned lo = i * 8;
		if (lo >= len)
			a[i] = 0;
		else if (lo + 8 > len)
			a[i] &= (uint8_t)(0xff << (8 - (len - lo)));
	}
}

void prefix_from_addr(struct prefix *out, const struct ipaddr *ip, unsigned len)
{
	unsigned bits = ipaddr_bits(ip);
	if (len > bits)
		len = bits;
	out->addr = *ip;
	out->len = (uint8_t)len;
	mask_bits(out->addr.a, len, bits);
}

int prefix_parse(struct prefix *out, const char *s, size_t n, bool strict)
{
	memset(out, 0, sizeof *out);
	const char *slash = memchr(s, '/', n);
	struct ipaddr ip;
	if (ipaddr_parse(&ip, s, slash ? (size_t)(slash - s) : n) < 0)
		return -1;
	unsigned bits = ipaddr_bits(&ip);
	unsigned len = bits;
	if (slash) {
		const char *p = slash + 1, *end = s + n;
		if (p == end || end - p > 3 || (*p == '0' && end - p > 1))
			return -1;
		len = 0;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			len = len * 10 + (unsigned)(*p - '0');
		}
		/* "::ffff:1.2.3.0/120" is the mapped form of 1.2.3.0/24 */
		const char *colon = memchr(s, ':', (size_t)(slash - s));
		if (ip.family == IPADDR_V4 && colon) {
			if (len < 96)
				return -1;
			len -= 96;
		}
		if (len > bits)
			return -1;
	}
	prefix_from_addr(out, &ip, len);
	if (strict && memcmp(out->addr.a, ip.a, 16) != 0)
		return -1;
	return 0;
}

bool prefix_contains(const struct prefix *p, const struct ipaddr *ip)
{
	if (p->addr.family != ip->family)
		return false;
	struct prefix q;
	prefix_from_addr(&q, ip, p->len);
	return memcmp(q.addr.a, p->addr.a, 16) == 0;
}

bool prefix_contains_prefix(const struct prefix *outer, const struct prefix *inner)
{
	return inner->len >= outer->len && prefix_contains(outer, &inner->addr);
}

bool prefix_overlaps(const struct prefix *x, const struct prefix *y)
{
	return prefix_contains_prefix(x, y) || prefix_contains_prefix(y, x);
}

bool prefix_is_host(const struct prefix *p)
{
	return p->len == ipaddr_bits(&p->addr);
}

int prefix_cmp(const struct prefix *x, const struct prefix *y)
{
	int c = ipaddr_cmp(&x->addr, &y->addr);
	if (c)
		return c;
	return x->len == y->len ? 0 : (x->len < y->len ? -1 : 1);
}

size_t prefix_format(const struct prefix *p, char *out)
{
	size_t n = ipaddr_format(&p->addr, out);
	n += (size_t)snprintf(out + n, PREFIX_STRLEN - n, "/%u", p->len);
	return n;
}

void prefix_list_add(struct prefix_list *l, const struct prefix *p)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = *p;
}

void prefix_list_free(struct prefix_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

bool prefix_list_contains(const struct prefix_list *l, const struct ipaddr *ip)
{
	for (size_t i = 0; i < l->n; i++)
		if (prefix_contains(&l->v[i], ip))
			return true;
	return false;
}

bool prefix_list_overlaps(const struct prefix_list *l, const struct prefix *p)
{
	for (size_t i = 0; i < l->n; i++)
		if (prefix_overlaps(&l->v[i], p))
			return true;
	return false;
}

void ipaddr_class(const struct ipaddr *ip, const struct class_conf *cc, struct prefix *out)
{
	prefix_from_addr(out, ip, ip->family == IPADDR_V4 ? cc->v4_len : cc->v6_len);
}

/* The built-in protected ranges: what no rule may block unless the
 * configuration drops them by name (protected_networks = !CIDR, !default
 * or none). */
static const struct {
	const char *net, *what;
} builtin[] = {
    {"0.0.0.0/8", "\"this\" network"},
    {"10.0.0.0/8", "RFC 1918 private"},
    {"100.64.0.0/10", "shared address space (CGNAT)"},
    {"127.0.0.0/8", "loopback"},
    {"169.254.0.0/16", "link-local"},
    {"172.16.0.0/12", "RFC 1918 private"},
    {"192.168.0.0/16", "RFC 1918 private"},
    {"224.0.0.0/4", "multicast"},
    {"240.0.0.0/4", "reserved, broadcast"},
    {"::/128", "unspecified"},
    {"::1/128", "loopback"},
    {"fc00::/7", "unique local"},
    {"fe80::/10", "link-local"},
    {"ff00::/8", "multicast"},
};

bool config_protected_builtin(size_t i, struct prefix *p, const char **what)
{
	if (i >= MXW_ARRAY_LEN(builtin))
		return false;
	if (prefix_parse(p, builtin[i].net, strlen(builtin[i].net), true) < 0)
		BUG("bad built-in network %s", builtin[i].net);
	if (what)
		*what = builtin[i].what;
	return true;
}

void config_protected_default(struct prefix_list *l)
{
	struct prefix p;
	for (size_t i = 0; config_protected_builtin(i, &p, NULL); i++)
		prefix_list_add(l, &p);
}

/*
 * Never emitted, whatever the configuration (protected_networks = none
 * included): "this network" 0/8, loopback, multicast and the reserved
 * 224/3; for IPv6 ::/8 (unspecified, loopback, IPv4-mapped ::ffff:0:0/96,
 * IPv4-compatible ::a.b.c.d, and the NAT64 prefixes 64:ff9b::/96 of RFC
 * 6052 and 64:ff9b:1::/48 of RFC 8215: an address there stands for an
 * IPv4 host, and the /64 class around it for the whole IPv4 Internet as
 * seen through a NAT64 gateway), link-local and multicast.
 */
static const struct prefix reserved[] = {
    {{IPADDR_V4, {0}}, 8}, {{IPADDR_V4, {127}}, 8},	    {{IPADDR_V4, {224}}, 3},
    {{IPADDR_V6, {0}}, 8}, {{IPADDR_V6, {0xfe, 0x80}}, 10}, {{IPADDR_V6, {0xff}}, 8},
};

bool prefix_reserved(const struct prefix *p)
{
	for (size_t i = 0; i < MXW_ARRAY_LEN(reserved); i++)
		if (prefix_overlaps(&reserved[i], p))
			return true;
	return false;
}

void config_local_addrs(struct prefix_list *l, struct strv *names)
{
	struct ifaddrs *ifa, *i;
	if (getifaddrs(&ifa) < 0) {
		log_warn("cannot list the host's own addresses; they are not protected: %m");
		return;
	}
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		struct prefix p;
		memset(&p, 0, sizeof p);
		if (i->ifa_addr->sa_family == AF_INET) {
			p.addr.family = IPADDR_V4;
			memcpy(p.addr.a, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, 4);
			p.len = 32;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			p.addr.family = IPADDR_V6;
			memcpy(p.addr.a, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, 16);
			p.len = 128;
		} else {
			continue;
		}
		bool known = false;
		for (size_t k = 0; k < l->n; k++)
			known = known || prefix_cmp(&l->v[k], &p) == 0;
		if (known)
			continue;
		prefix_list_add(l, &p);
		if (names)
			strv_add(names, i->ifa_name ? i->ifa_name : "?");
	}
	freeifaddrs(ifa);
}

/*
 * l minus cut: entries inside cut go, an entry that holds cut is replaced
 * by the pieces of it around cut (one per bit between the two lengths), so
 * that what is left overlaps nothing inside cut. src (may be NULL) follows
 * the entries: a piece keeps its entry's source. Returns how many entries
 * overlapped cut.
 */
size_t prefix_list_cut(struct prefix_list *l, struct strv *src, const struct prefix *cut)
{
	struct prefix_list out = {0};
	struct strv osrc = {0};
	size_t hit = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct prefix *e = &l->v[i];
		const char *s = src && i < src->n ? src->v[i] : "";
		if (!prefix_overlaps(e, cut)) {
			prefix_list_add(&out, e);
			strv_add(&osrc, s);
			continue;
		}
		hit++;
		if (prefix_contains_prefix(cut, e))
			continue;
		/* e holds cut: the sibling of cut's path at each length */
		for (unsigned len = e->len + 1u; len <= cut->len; len++) {
			struct prefix piece;
			prefix_from_addr(&piece, &cut->addr, len);
			unsigned b = len - 1;
			piece.addr.a[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
			prefix_list_add(&out, &piece);
			strv_add(&osrc, s);
		}
	}
	prefix_list_free(l);
	*l = out;
	if (src) {
		strv_free(src);
		*src = osrc;
	} else {
		strv_free(&osrc);
	}
	return hit;
}

/* ------------------------------------------------- what people type */

/* Why parse_v4 refused s[0..n) (which holds no ':'), in words. */
static void explain_v4(const char *s, size_t n, char *msg, size_t msgsz)
{
	size_t parts = 1;
	for (size_t i = 0; i < n; i++)
		parts += s[i] == '.';
	for (size_t i = 0, start = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		size_t len = i - start;
		const char *p = s + start;
		bool digits = len > 0;
		unsigned long v = 0;
		for (size_t k = 0; k < len && digits; k++) {
			digits = p[k] >= '0' && p[k] <= '9';
			if (digits && v < 100000)
				v = v * 10 + (unsigned long)(p[k] - '0');
		}
		if (len && !digits) {
			snprintf(msg, msgsz,
				 "'%.*s' is not a number (an IPv4 address is four numbers 0 to 255, e.g. "
				 "192.0.2.7)",
				 (int)MXW_MIN(len, (size_t)40), p);
			return;
		}
		if (digits && v > 255) {
			snprintf(msg, msgsz,
				 "%.*s is more than 255 (each of the four numbers of an IPv4 address "
				 "is 0 to 255)",
				 (int)MXW_MIN(len, (size_t)40), p);
			return;
		}
		if (digits && len > 1 && p[0] == '0') {
			snprintf(msg, msgsz, "%.*s has a leading zero (ambiguous: octal or decimal?)",
				 (int)MXW_MIN(len, (size_t)40), p);
			return;
		}
		start = i + 1;
	}
	if (parts != 4)
		snprintf(msg, msgsz, "an IPv4 address has four numbers separated by dots, this has %zu",
			 parts);
	else
		snprintf(msg, msgsz, "an empty number between dots");
}

void prefix_explain(const char *s, size_t n, bool strict, char *msg, size_t msgsz)
{
	struct prefix p;
	if (prefix_parse(&p, s, n, strict) == 0) {
		snprintf(msg, msgsz, "a valid address or prefix");
		return;
	}
	const char *slash = memchr(s, '/', n);
	size_t an = slash ? (size_t)(slash - s) : n;
	struct ipaddr ip;
	if (an == 0) {
		snprintf(msg, msgsz, "the address is missing before the '/'");
		return;
	}
	if (ipaddr_parse(&ip, s, an) < 0) {
		bool v6 = memchr(s, ':', an) != NULL;
		bool hexish = false;
		for (size_t i = 0; i < an; i++)
			hexish |= (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F');
		if (v6)
			snprintf(msg, msgsz,
				 "not an IPv6 address (hex groups separated by ':', e.g. 2001:db8::7)");
		else if (memchr(s, '.', an) || !hexish)
			explain_v4(s, an, msg, msgsz);
		else
			snprintf(msg, msgsz, "not an IP address (e.g. 192.0.2.7 or 2001:db8::7)");
		return;
	}
	unsigned bits = ipaddr_bits(&ip);
	if (slash) {
		const char *q = slash + 1, *end = s + n;
		bool digits = q < end && end - q <= 3;
		for (const char *x = q; x < end && digits; x++)
			digits = *x >= '0' && *x <= '9';
		if (!digits) {
			snprintf(msg, msgsz, "the prefix length after '/' must be a number 0 to %u", bits);
			return;
		}
		snprintf(msg, msgsz, "the prefix length must be 0 to %u for IPv%d", bits, ip.family);
		if (prefix_parse(&p, s, n, false) < 0)
			return;
	}
	if (strict && prefix_parse(&p, s, n, false) == 0) {
		char net[PREFIX_STRLEN];
		prefix_format(&p, net);
		snprintf(msg, msgsz, "host bits are set below /%u: the network is %s", p.len, net);
		return;
	}
	snprintf(msg, msgsz, "not an IP address or prefix");
}

/* s[0..n) is a host name as a log writes it before "[ip]": letters,
 * digits, '.', '-', '_' (or "unknown"). */
static bool log_host_name(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* ":PORT" (1 to 5 digits) */
static bool port_suffix(const char *s, size_t n)
{
	if (n < 2 || n > 6 || s[0] != ':')
		return false;
	for (size_t i = 1; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int prefix_parse_pasted(struct prefix *out, const char *s, size_t n, char *msg, size_t msgsz)
{
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	if (prefix_parse(out, s, n, false) == 0)
		return 0;
	/* name[ip] or [ip], maybe followed by :port ("unknown[192.0.2.7]:25") */
	const char *lb = memchr(s, '[', n);
	if (lb && log_host_name(s, (size_t)(lb - s))) {
		const char *rb = memchr(lb, ']', n - (size_t)(lb - s));
		if (rb && (rb + 1 == s + n || port_suffix(rb + 1, (size_t)(s + n - rb - 1)))) {
			struct ipaddr ip;
			if (ipaddr_parse(&ip, lb + 1, (size_t)(rb - lb - 1)) == 0) {
				prefix_from_addr(out, &ip, ipaddr_bits(&ip));
				return 0;
			}
			prefix_explain(lb + 1, (size_t)(rb - lb - 1), false, msg, msgsz);
			return -1;
		}
	}
	/* a.b.c.d:port (one colon: not IPv6) */
	const char *colon = memchr(s, ':', n);
	if (colon && !memchr(colon + 1, ':', (size_t)(s + n - colon - 1)) &&
	    port_suffix(colon, (size_t)(s + n - colon))) {
		struct ipaddr ip;
		if (ipaddr_parse(&ip, s, (size_t)(colon - s)) == 0) {
			prefix_from_addr(out, &ip, 32);
			return 0;
		}
		prefix_explain(s, (size_t)(colon - s), false, msg, msgsz);
		return -1;
	}
	prefix_explain(s, n, false, msg, msgsz);
	return -1;
}

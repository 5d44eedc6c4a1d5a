/*
 * syslog.c - the syslog receiver for fleets of MX hosts: UDP datagrams and
 * TCP streams (RFC 6587 octet counting and newline framing) carrying RFC
 * 3164 or RFC 5424 messages. Each message is rewritten into the line a log
 * file would hold ("TIMESTAMP HOST TAG: MSG") and handed to the sink with
 * the envelope's host and the peer address.
 *
 * It must never grow a buffer past syslog_max_msg, never accept more than
 * syslog_max_conn connections, never block, and never take the host named
 * in a message for the peer's address (both are kept, apart).
 *
 * Who may send (a line can get any address blocked): with no allow list,
 * loopback peers only, and then it refuses to listen beyond loopback; with
 * one, its peers only. A UDP datagram's source address can be forged, so
 * UDP from a peer that is not loopback is refused even when allowed, unless
 * syslog_udp_remote says otherwise. Refusals are counted (syslog_dropped)
 * and logged at most once a minute per kind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "collector/internal.h"

struct conn {
	struct fdh h; /* first: epoll points here */
	struct syslogd *sd;
	struct ipaddr peer;
	char peer_text[IPADDR_STRLEN];
	char *buf;
	size_t len;
	size_t skip;	   /* octet-counted bytes still to drop */
	bool skip_line;	   /* dropping an over-long newline-framed message */
	struct conn *next; /* list of open connections */
};

struct syslogd {
	struct fdh udp, tcp;
	int epfd;
	size_t max_msg;
	int max_conn, n_conn;
	const struct prefix_list *allow;
	bool udp_remote;
	int64_t warned_peer_us, warned_udp_us; /* last refusal logged (monotonic) */
	coll_sink_fn sink;
	void *ctx;
	struct coll_stats *stats;
	struct conn *conns;
	char *dgram;
	struct buf line;
};

/* "ADDR:PORT", "[V6]:PORT", or ":PORT" / "PORT" for loopback (127.0.0.1). */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	const char *colon = strrchr(s, ':');
	char host[IPADDR_STRLEN + 2];
	const char *h = s;
	size_t hn = colon ? (size_t)(colon - s) : 0;
	const char *port_text = colon ? colon + 1 : s;
	if (hn == 0) {
		h = "127.0.0.1";
		hn = strlen(h);
	}
	if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
		h++;
		hn -= 2;
	}
	if (str_copy(host, sizeof host, h, hn) < 0)
		return -1;
	char *end;
	long port = strtol(port_text, &end, 10);
	if (*end || port < 1 || port > 65535)
		return -1;
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sl = sizeof *s4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sl = sizeof *s6;
		return 0;
	}
	return -1;
}

static void peer_of(const struct sockaddr_storage *ss, struct ipaddr *ip, char *text)
{
	memset(ip, 0, sizeof *ip);
	char tmp[IPADDR_STRLEN] = "";
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, tmp, sizeof tmp);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, tmp, sizeof tmp);
	if (ipaddr_parse(ip, tmp, strlen(tmp)) == 0)
		ipaddr_format(ip, text);
	else
		str_copy(text, IPADDR_STRLEN, "unknown", 7);
}

static int bind_sock(int type, const struct sockaddr_storage *ss, socklen_t sl)
{
	int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)ss, sl) < 0 || (type == SOCK_STREAM && listen(fd, 64) < 0)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

struct syslogd *syslogd_new(const struct coll_opts *o, int epfd, coll_sink_fn sink, void *ctx,
			    struct coll_stats *stats)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (parse_listen(o->syslog_listen, &ss, &sl) < 0) {
		log_error("syslog listen address '%s' is not ADDR:PORT", o->syslog_listen);
		return NULL;
	}
	struct ipaddr bind_ip;
	char bind_text[IPADDR_STRLEN];
	peer_of(&ss, &bind_ip, bind_text);
	bool open_list = !o->syslog_allow || o->syslog_allow->n == 0;
	if (open_list && !ipaddr_is_loopback(&bind_ip)) {
		log_error(
		    "syslog: refusing to listen on %s without syslog_allow: anyone who reaches the port "
		    "could "
		    "feed log lines and get any address blocked; list the hosts that may send in [collector] "
		    "syslog_allow (or listen on 127.0.0.1)",
		    o->syslog_listen);
		return NULL;
	}
	struct syslogd *sd = xcalloc(1, sizeof *sd);
	sd->epfd = epfd;
	sd->max_msg = o->syslog_max_msg ? o->syslog_max_msg : 8192;
	sd->max_conn = o->syslog_max_conn ? o->syslog_max_conn : 64;
	sd->allow = o->syslog_allow;
	sd->udp_remote = o->syslog_udp_remote;
	sd->sink = sink;
	sd->ctx = ctx;
	sd->stats = stats;
	sd->udp.kind = FDH_UDP;
	sd->tcp.kind = FDH_TCP_LISTEN;
	unsigned port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	struct buf why = BUF_INIT;
	sd->udp.fd = bind_sock(SOCK_DGRAM, &ss, sl);
	if (sd->udp.fd < 0) {
		bind_error_explain(&why, o->syslog_listen, port, errno);
		log_error("syslog (UDP): %s", buf_str(&why));
		buf_free(&why);
		free(sd);
		return NULL;
	}
	sd->tcp.fd = bind_sock(SOCK_STREAM, &ss, sl);
	if (sd->tcp.fd < 0) {
		bind_error_explain(&why, o->syslog_listen, port, errno);
		log_error("syslog (TCP): %s", buf_str(&why));
		buf_free(&why);
		close(sd->udp.fd);
		free(sd);
		return NULL;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &sd->udp};
	epoll_ctl(epfd, EPOLL_CTL_ADD, sd->udp.fd, &ev);
	ev.data.ptr = &sd->tcp;
	epoll_ctl(epfd, EPOLL_CTL_ADD, sd->tcp.fd, &ev);
	sd->dgram = xmalloc(sd->max_msg + 1);
	log_info("syslog receiver on %s (TCP, and UDP from %s)", o->syslog_listen,
		 sd->udp_remote ? "the allowed peers" : "loopback only");
	if (sd->udp_remote && !ipaddr_is_loopback(&bind_ip))
		log_warn(
		    "syslog: UDP from the allowed peers is accepted (syslog_udp_remote = yes): a UDP source "
		    "address can be forged");
	return sd;
}

static void conn_close(struct syslogd *sd, struct conn *cn)
{
	for (struct conn **pp = &sd->conns; *pp; pp = &(*pp)->next)
		if (*pp == cn) {
			*pp = cn->next;
			break;
		}
	epoll_ctl(sd->epfd, EPOLL_CTL_DEL, cn->h.fd, NULL);
	close(cn->h.fd);
	free(cn->buf);
	free(cn);
	sd->n_conn--;
}

void syslogd_free(struct syslogd *sd)
{
	if (!sd)
		return;
	while (sd->conns)
		conn_close(sd, sd->conns);
	close(sd->udp.fd);
	close(sd->tcp.fd);
	free(sd->dgram);
	buf_free(&sd->line);
	free(sd);
}

int syslog_peer_check(const struct prefix_list *allow, bool udp_remote, const struct ipaddr *peer, bool udp)
{
	bool listed =
	    (!allow || allow->n == 0) ? ipaddr_is_loopback(peer) : prefix_list_contains(allow, peer);
	if (!listed)
		return SYSLOG_PEER_NOT_ALLOWED;
	if (udp && !udp_remote && !ipaddr_is_loopback(peer))
		return SYSLOG_PEER_UDP_REMOTE;
	return SYSLOG_PEER_OK;
}

/* May peer ip send? Counts and (once a minute) logs a refusal. */
static bool allowed(struct syslogd *sd, const struct ipaddr *ip, const char *text, bool udp)
{
	int v = syslog_peer_check(sd->allow, sd->udp_remote, ip, udp);
	if (v == SYSLOG_PEER_OK)
		return true;
	bool listed = v == SYSLOG_PEER_UDP_REMOTE;
	sd->stats->syslog_dropped++;
	int64_t now = clock_mono_us();
	int64_t *last = listed ? &sd->warned_udp_us : &sd->warned_peer_us;
	if (*last == 0 || now - *last >= 60 * 1000000LL) {
		*last = now;
		if (!listed)
			log_warn("syslog: %s from %s refused: not in syslog_allow%s (further refusals are "
				 "counted as "
				 "syslog_dropped)",
				 udp ? "a datagram" : "a connection", text,
				 (!sd->allow || sd->allow->n == 0) ? " (empty: loopback only)" : "");
		else
			log_warn("syslog: a UDP datagram from %s refused: UDP source addresses can be "
				 "forged; send "
				 "over TCP, or set syslog_udp_remote = yes (further refusals are counted as "
				 "syslog_dropped)",
				 text);
	}
	return false;
}

static void deliver(struct syslogd *sd, const char *msg, size_t n, const struct ipaddr *peer,
		    const char *peer_text)
{
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == '\0'))
		n--;
	if (n == 0)
		return;
	struct span host;
	if (syslog_to_line(msg, n, peer_text, &sd->line, &host) < 0) {
		sd->stats->syslog_dropped++;
		return;
	}
	sd->stats->syslog_msgs++;
	sd->stats->lines++;
	struct coll_line ln = {
	    .p = sd->line.data, .n = sd->line.len, .source = -1, .host = host, .peer = *peer};
	sd->sink(sd->ctx, &ln);
}

static void on_udp(struct syslogd *sd)
{
	for (int i = 0; i < 512; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		ssize_t r =
		    recvfrom(sd->udp.fd, sd->dgram, sd->max_msg + 1, MSG_TRUNC, (struct sockaddr *)&ss, &sl);
		if (r < 0)
			return;
		struct ipaddr ip;
		char text[IPADDR_STRLEN];
		peer_of(&ss, &ip, text);
		if (!allowed(sd, &ip, text, true))
			continue;
		if ((size_t)r > sd->max_msg) {
			sd->stats->syslog_dropped++;
			continue;
		}
		deliver(sd, sd->dgram, (size_t)r, &ip, text);
	}
}

static void on_accept(struct syslogd *sd)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(sd->tcp.fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct ipaddr ip;
		char text[IPADDR_STRLEN];
		peer_of(&ss, &ip, text);
		if (!allowed(sd, &ip, text, false)) {
			close(fd);
			continue;
		}
		if (sd->n_conn >= sd->max_conn) {
			sd->stats->syslog_dropped++;
			close(fd);
			continue;
		}
		struct conn *cn = xcalloc(1, sizeof *cn);
		cn->h.kind = FDH_TCP_CONN;
		cn->h.fd = fd;
		cn->sd = sd;
		cn->peer = ip;
		memcpy(cn->peer_text, text, sizeof text);
		cn->buf = xmalloc(sd->max_msg + 32);
		cn->next = sd->conns;
		sd->conns = cn;
		sd->n_conn++;
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &cn->h};
		epoll_ctl(sd->epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}

/* Frame the bytes held in cn->buf; keep an incomplete frame. */
static void conn_frames(struct syslogd *sd, struct conn *cn, bool eof)
{
	size_t at = 0;
	for (;;) {
		if (cn->skip) {
			size_t k = MXW_MIN(cn->skip, cn->len - at);
			cn->skip -= k;
			at += k;
			if (cn->skip)
				break;
		}
		if (at >= cn->len)
			break;
		char *p = cn->buf + at;
		size_t avail = cn->len - at;
		if (cn->skip_line) {
			char *nl = memchr(p, '\n', avail);
			if (!nl) {
				at = cn->len;
				break;
			}
			cn->skip_line = false;
			at += (size_t)(nl - p) + 1;
			continue;
		}
		if (*p >= '1' && *p <= '9') {
			/* RFC 6587 octet counting: MSG-LEN SP SYSLOG-MSG */
			size_t i = 0, len = 0;
			while (i < avail && i < 10 && p[i] >= '0' && p[i] <= '9')
				len = len * 10 + (size_t)(p[i++] - '0');
			if (i == avail && !eof)
				break; /* the length is not complete yet */
			if (i < avail && p[i] == ' ') {
				if (len > sd->max_msg) {
					sd->stats->syslog_dropped++;
					cn->skip = len;
					at += i + 1;
					continue;
				}
				if (avail - i - 1 < len) {
					if (eof)
						sd->stats->syslog_dropped++;
					break;
				}
				deliver(sd, p + i + 1, len, &cn->peer, cn->peer_text);
				at += i + 1 + len;
				continue;
			}
			/* not a length: a newline-framed message that starts with a digit */
		}
		char *nl = memchr(p, '\n', avail);
		if (!nl) {
			if (eof) {
				deliver(sd, p, avail, &cn->peer, cn->peer_text);
				at = cn->len;
			} else if (avail > sd->max_msg) {
				sd->stats->syslog_dropped++;
				cn->skip_line = true;
				at = cn->len;
			}
			break;
		}
		size_t mlen = (size_t)(nl - p);
		if (mlen > sd->max_msg)
			sd->stats->syslog_dropped++;
		else
			deliver(sd, p, mlen, &cn->peer, cn->peer_text);
		at += mlen + 1;
	}
	if (at) {
		memmove(cn->buf, cn->buf + at, cn->len - at);
		cn->len -= at;
	}
}

static void on_conn(struct syslogd *sd, struct conn *cn)
{
	for (int i = 0; i < 64; i++) {
		size_t room = sd->max_msg + 32 - cn->len;
		ssize_t r = read(cn->h.fd, cn->buf + cn->len, room);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			conn_frames(sd, cn, true);
			conn_close(sd, cn);
			return;
		}
		cn->len += (size_t)r;
		conn_frames(sd, cn, false);
		if (cn->len >= sd->max_msg + 32) {
			/* a frame that cannot fit: the octet count lied or no newline */
			sd->stats->syslog_dropped++;
			cn->len = 0;
			cn->skip_line = true;
		}
	}
}

void syslogd_handle(struct syslogd *sd, struct fdh *h, uint32_t events)
{
	if (!sd)
		return;
	switch (h->kind) {
	case FDH_UDP: on_udp(sd); break;
	case FDH_TCP_LISTEN: on_accept(sd); break;
	case FDH_TCP_CONN: on_conn(sd, (struct conn *)h); break;
	default: break;
	}
}

/* ------------------------------------------------------------ message parsing */

static size_t tok_len(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && p[i] != ' ')
		i++;
	return i;
}

static bool is_3164_stamp(const char *p, size_t n)
{
	/* "Mmm dd hh:mm:ss" (dd may be " 7") */
	if (n < 15)
		return false;
	static const char *mon = "JanFebMarAprMayJunJulAugSepOctNovDec";
	bool m = false;
	for (int i = 0; i < 12; i++)
		if (memcmp(p, mon + 3 * i, 3) == 0)
			m = true;
	return m && p[3] == ' ' && p[6] == ' ' && p[9] == ':' && p[12] == ':';
}

static void now_stamp(struct buf *out)
{
	char t[TIME_STRLEN];
	size_t n = time_format_rfc3339(clock_now_us(), false, t);
	buf_append(out, t, n);
}

int syslog_to_line(const char *msg, size_t n, const char *peer_text, struct buf *out, struct span *host)
{
	buf_reset(out);
	*host = SPAN_NULL;
	const char *p = msg;
	size_t rest = n;
	if (rest && *p == '<') {
		size_t i = 1;
		unsigned pri = 0;
		while (i < rest && i < 5 && p[i] >= '0' && p[i] <= '9')
			pri = pri * 10 + (unsigned)(p[i++] - '0');
		if (i == 1 || i >= rest || p[i] != '>' || pri > 191)
			return -1;
		p += i + 1;
		rest -= i + 1;
	}
	if (rest == 0)
		return -1;
	const char *peer = peer_text && *peer_text ? peer_text : "-";
	if (rest >= 2 && p[0] == '1' && p[1] == ' ') {
		/* RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG] */
		p += 2;
		rest -= 2;
		const char *f[5];
		size_t fl[5];
		for (int k = 0; k < 5; k++) {
			fl[k] = tok_len(p, rest);
			f[k] = p;
			if (fl[k] == 0)
				return -1;
			p += fl[k];
			rest -= fl[k];
			if (rest == 0 || *p != ' ')
				return -1;
			p++;
			rest--;
		}
		/* structured data: "-" or [..][..] with \] escapes inside quotes */
		if (rest && *p == '-') {
			p++;
			rest--;
		} else {
			while (rest && *p == '[') {
				bool q = false;
				while (rest) {
					char ch = *p;
					p++;
					rest--;
					if (q && ch == '\\' && rest) {
						p++;
						rest--;
					} else if (ch == '"') {
						q = !q;
					} else if (ch == ']' && !q) {
						break;
					}
				}
			}
		}
		/* the SP before MSG, and the one a sender like rsyslog keeps from "TAG: MSG" */
		while (rest && *p == ' ') {
			p++;
			rest--;
		}
		if (rest >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
		    (unsigned char)p[2] == 0xBF) {
			p += 3;
			rest -= 3;
		}
		if (fl[0] == 1 && f[0][0] == '-')
			now_stamp(out);
		else
			buf_append(out, f[0], fl[0]);
		buf_appendc(out, ' ');
		size_t hs = out->len;
		if (fl[1] == 1 && f[1][0] == '-')
			buf_appends(out, peer);
		else
			buf_append(out, f[1], fl[1]);
		host->n = (uint32_t)(out->len - hs);
		buf_appendc(out, ' ');
		buf_append(out, f[2], fl[2]);
		if (!(fl[3] == 1 && f[3][0] == '-')) {
			buf_appendc(out, '[');
			buf_append(out, f[3], fl[3]);
			buf_appendc(out, ']');
		}
		buf_appends(out, ": ");
		buf_append(out, p, rest);
		host->p = out->data + hs;
		return 0;
	}
	/* RFC 3164: TIMESTAMP SP HOSTNAME SP TAG MSG; tolerate a missing host or an RFC 3339 stamp */
	size_t tl = 0;
	if (is_3164_stamp(p, rest))
		tl = 15;
	else if (rest >= 19 && p[0] >= '0' && p[0] <= '9' && p[4] == '-' && p[10] == 'T')
		tl = tok_len(p, rest);
	if (tl) {
		buf_append(out, p, tl);
		p += tl;
		rest -= tl;
		while (rest && *p == ' ') {
			p++;
			rest--;
		}
	} else {
		now_stamp(out);
	}
	buf_appendc(out, ' ');
	size_t hl = tok_len(p, rest);
	bool has_host = hl > 0 && hl < rest && p[hl - 1] != ':' && !memchr(p, '[', hl);
	size_t hs = out->len;
	if (has_host) {
		buf_append(out, p, hl);
		p += hl + 1;
		rest -= hl + 1;
	} else {
		buf_appends(out, peer);
	}
	host->n = (uint32_t)(out->len - hs);
	buf_appendc(out, ' ');
	buf_append(out, p, rest);
	host->p = out->data + hs;
	return 0;
}

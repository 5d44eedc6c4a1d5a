/*
 * conns.c - who may hold a connection to the web server, so that no set of
 * slow clients can lock the dashboard out.
 *
 * libmicrohttpd's own limits refuse a new connection once an address holds
 * per_ip_connections, or the server max_connections: 16 slow connections
 * from 127.0.0.1 (any local user, or a reverse proxy on the same host)
 * then kept every local client out, and 256 from anywhere kept everybody
 * out. So the accounting is ours (MHD's limits are set out of the way):
 *   - an address that is not loopback may hold per_ip_connections; its next
 *     connection is refused (the cap against remote slow clients);
 *   - loopback clients have no per-address cap;
 *   - at max_connections, a new connection takes the place of the
 *     connection idle the longest: one that has not sent a whole request
 *     (half-sent headers) or waits between requests (keep-alive). Its socket
 *     is shut down, and libmicrohttpd closes it. A connection inside a
 *     request (an answer being made, a live stream) is never taken; when
 *     none is idle, the new connection is refused.
 * A slow client thus costs a slot only until somebody needs it.
 *
 * It must never touch a socket libmicrohttpd has closed: a connection's
 * record leaves the list (under the mutex) when MHD reports it closed,
 * which MHD does before closing the socket.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "web/web_internal.h"

struct web_conn {
	struct web_conn *prev, *next;
	int fd;
	struct ipaddr ip;
	int64_t idle_since; /* monotonic us; meaningful when !busy */
	bool busy;	    /* inside a request: never taken */
	bool evicting;	    /* shut down, not closed by MHD yet */
};

static void addr_of(const struct sockaddr *sa, struct ipaddr *ip)
{
	memset(ip, 0, sizeof *ip);
	if (sa && sa->sa_family == AF_INET) {
		ip->family = IPADDR_V4;
		memcpy(ip->a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa && sa->sa_family == AF_INET6) {
		static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
		const uint8_t *a =
		    (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (memcmp(a, mapped, 12) == 0) {
			ip->family = IPADDR_V4;
			memcpy(ip->a, a + 12, 4);
		} else {
			ip->family = IPADDR_V6;
			memcpy(ip->a, a, 16);
		}
	}
}

void web_conns_init(struct web *w, unsigned max_conn, unsigned per_ip)
{
	pthread_mutex_init(&w->conns_mu, NULL);
	w->conns_max = max_conn;
	w->conns_per_ip = per_ip;
}

void web_conns_free(struct web *w)
{
	/* MHD has stopped: it reported every connection closed */
	pthread_mutex_destroy(&w->conns_mu);
}

enum MHD_Result web_conns_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	(void)addrlen;
	struct web *w = cls;
	struct ipaddr ip;
	addr_of(addr, &ip);
	enum MHD_Result ok = MHD_YES;
	pthread_mutex_lock(&w->conns_mu);
	if (w->conns_per_ip && !ipaddr_is_loopback(&ip)) {
		unsigned same = 0;
		for (struct web_conn *c = w->conns; c; c = c->next)
			same += !c->evicting && ipaddr_cmp(&c->ip, &ip) == 0;
		if (same >= w->conns_per_ip)
			ok = MHD_NO;
	}
	if (ok == MHD_YES && w->nconns - w->nevicting >= w->conns_max) {
		struct web_conn *victim = NULL;
		for (struct web_conn *c = w->conns; c; c = c->next)
			if (!c->busy && !c->evicting && (!victim || c->idle_since < victim->idle_since))
				victim = c;
		/* past the slack for sockets still closing: wait for them */
		if (!victim || w->nconns >= w->conns_max + WEB_CONNS_SLACK) {
			ok = MHD_NO;
		} else {
			victim->evicting = true;
			w->nevicting++;
			shutdown(victim->fd, SHUT_RDWR);
			atomic_fetch_add(&w->conns_evicted, 1);
		}
	}
	if (ok == MHD_NO)
		atomic_fetch_add(&w->conns_refused, 1);
	pthread_mutex_unlock(&w->conns_mu);
	return ok;
}

void web_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		      enum MHD_ConnectionNotificationCode toe)
{
	struct web *w = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		struct web_conn *c = xcalloc(1, sizeof *c);
		const union MHD_ConnectionInfo *fd =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ca =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		c->fd = fd ? fd->connect_fd : -1;
		addr_of(ca ? ca->client_addr : NULL, &c->ip);
		c->idle_since = clock_mono_us();
		pthread_mutex_lock(&w->conns_mu);
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		w->nconns++;
		pthread_mutex_unlock(&w->conns_mu);
		*socket_context = c;
		return;
	}
	struct web_conn *c = *socket_context;
	if (!c)
		return;
	pthread_mutex_lock(&w->conns_mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	if (c->evicting)
		w->nevicting--;
	pthread_mutex_unlock(&w->conns_mu);
	*socket_context = NULL;
	free(c);
}

void web_conns_busy(struct web *w, struct MHD_Connection *conn, bool busy)
{
	const union MHD_ConnectionInfo *i = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct web_conn *c = i ? i->socket_context : NULL;
	if (!c)
		return;
	pthread_mutex_lock(&w->conns_mu);
	c->busy = busy;
	if (!busy)
		c->idle_since = clock_mono_us();
	pthread_mutex_unlock(&w->conns_mu);
}

/*
 * internal.h - what the collector's files share among themselves (not part
 * of the module's contract; see collector.h).
 */
#ifndef MXWARDEN_COLLECTOR_INTERNAL_H
#define MXWARDEN_COLLECTOR_INTERNAL_H

#include <sys/epoll.h>

#include "collector/collector.h"

/* What an epoll registration points at. */
enum fdh_kind { FDH_INOTIFY, FDH_UDP, FDH_TCP_LISTEN, FDH_TCP_CONN };
struct fdh {
	enum fdh_kind kind;
	int fd;
};

struct syslogd;
/* Bind the listener(s) of opts->syslog_listen and register them in epfd.
 * Returns NULL with a message on stderr on failure. */
struct syslogd *syslogd_new(const struct coll_opts *opts, int epfd, coll_sink_fn sink, void *ctx,
			    struct coll_stats *stats);
void syslogd_handle(struct syslogd *s, struct fdh *h, uint32_t events);
void syslogd_free(struct syslogd *s);

#endif

/*
 * service.c - talking to systemd when `run` is a Type=notify service
 * (sd_notify(3), libsystemd): READY=1 once engine_start() is done, a STATUS
 * line (lines per second, events, decisions in force) every few seconds,
 * WATCHDOG=1 at half the unit's WatchdogSec= from the loop's tick (so a
 * loop that hangs stops the pings and systemd restarts the service),
 * RELOADING=1 around SIGHUP and STOPPING=1 at the stop; EXTEND_TIMEOUT_USEC
 * while the database is checked at start after an unclean stop (minutes
 * for a large one from a cold disk, more than TimeoutStartSec=). Without
 * NOTIFY_SOCKET (not a service) every call is a cheap no-op.
 */
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "engine/internal.h"

#define STATUS_EVERY_US (5LL * 1000000)

static void status_text(struct engine *e, int64_t now_us, char *out, size_t n)
{
	struct agg_stats st;
	aggregator_stats(e->agg, &st);
	double secs = (double)(now_us - e->svc_status_us) / 1e6;
	double rate = secs > 0 && e->svc_status_us ? (double)(e->lines - e->svc_status_lines) / secs : 0;
	snprintf(out, n, "%.0f lines/s, %llu lines, %llu events, %zu decisions in force", rate,
		 (unsigned long long)e->lines, (unsigned long long)e->events, st.decisions);
}

/* Each call gives the start-up EXTEND_US more from now: a check that
 * stalls that long is taken for a hang. */
#define EXTEND_US (60LL * 1000000)

void eng_service_busy(void *arg, const char *what)
{
	(void)arg;
	sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%lld\nSTATUS=%s", EXTEND_US, what);
}

void eng_service_ready(struct engine *e)
{
	uint64_t usec = 0;
	e->svc_watchdog_us = sd_watchdog_enabled(0, &usec) > 0 ? (int64_t)(usec / 2) : 0;
	int64_t now = clock_mono_us();
	char st[256];
	status_text(e, now, st, sizeof st);
	e->svc_status_us = e->svc_watchdog_last_us = now;
	e->svc_status_lines = e->lines;
	sd_notifyf(0, "READY=1\nSTATUS=%s", st);
}

void eng_service_tick(struct engine *e)
{
	int64_t now = clock_mono_us();
	if (e->svc_watchdog_us > 0 && now - e->svc_watchdog_last_us >= e->svc_watchdog_us) {
		e->svc_watchdog_last_us = now;
		sd_notify(0, "WATCHDOG=1");
	}
	if (now - e->svc_status_us >= STATUS_EVERY_US) {
		char st[256];
		status_text(e, now, st, sizeof st);
		e->svc_status_us = now;
		e->svc_status_lines = e->lines;
		sd_notifyf(0, "STATUS=%s", st);
	}
}

void eng_service_reloading(struct engine *e, bool done)
{
	(void)e;
	sd_notify(0, done ? "READY=1" : "RELOADING=1");
}

void eng_service_stopping(struct engine *e)
{
	(void)e;
	sd_notify(0, "STOPPING=1\nSTATUS=stopping: committing the open batch");
}

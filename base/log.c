/*
 * log.c - our own diagnostics on stderr (and syslog when configured).
 * Messages are formatted by the caller; anything log-derived must have gone
 * through buf_append_printable() first so it cannot forge a log line.
 *
 * On a terminal a line reads "mxwarden: LEVEL: message". When stderr is the
 * journal (systemd sets JOURNAL_STREAM to the device and inode of the
 * stream it gave us), a line starts with its syslog priority instead,
 * "<4>message" (sd-daemon(3)), so that journald keeps the level, and
 * carries no name or time stamp: the journal adds both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include "base.h"

static enum log_level min_level = LOG_LVL_INFO;
static bool use_syslog;
static int journal = -1; /* stderr is the journal's stream: -1 not checked yet */

static bool to_journal(void)
{
	if (journal < 0) {
		const char *js = getenv("JOURNAL_STREAM");
		unsigned long long dev, ino;
		struct stat st;
		journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
			  (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
	}
	return journal;
}

void log_reset_stream(void)
{
	journal = -1;
}

void log_set_level(enum log_level lvl)
{
	min_level = lvl;
}

void log_set_syslog(bool on, const char *ident)
{
	if (on && !use_syslog)
		openlog(ident ? ident : "mxwarden", LOG_PID, LOG_MAIL);
	else if (!on && use_syslog)
		closelog();
	use_syslog = on;
}

__attribute__((format(printf, 2, 0))) static void vlog(enum log_level lvl, const char *fmt, va_list ap)
{
	static const char *names[] = {"debug", "info", "warning", "error"};
	static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
	if (lvl < min_level)
		return;
	char msg[2048];
	vsnprintf(msg, sizeof msg, fmt, ap); /* a cut diagnostic is still useful */
	if (to_journal())
		fprintf(stderr, "<%d>%s\n", prio[lvl], msg);
	else
		fprintf(stderr, "mxwarden: %s: %s\n", names[lvl], msg);
	if (use_syslog)
		syslog(prio[lvl], "%s", msg);
}

#define LOGFN(name, lvl)                \
	void name(const char *fmt, ...) \
	{                               \
		va_list ap;             \
		va_start(ap, fmt);      \
		vlog(lvl, fmt, ap);     \
		va_end(ap);             \
	}
LOGFN(log_debug, LOG_LVL_DEBUG)
LOGFN(log_info, LOG_LVL_INFO)
LOGFN(log_warn, LOG_LVL_WARN)
LOGFN(log_error, LOG_LVL_ERROR)

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char msg[2048];
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, to_journal() ? "<2>fatal: %s\n" : "mxwarden: fatal: %s\n", msg);
	if (use_syslog)
		syslog(LOG_CRIT, "fatal: %s", msg);
	exit(1);
}

void bug_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char msg[2048];
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%sBUG at %s:%d: %s\n", to_journal() ? "<2>" : "mxwarden: ", file, line, msg);
	abort();
}

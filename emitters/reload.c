/*
 * reload.c - runs an output's reload command after a rewrite (base's child
 * runner: posix_spawnp, no shell, its own process group, stdin and stdout
 * on /dev/null, stderr collected, the whole group killed at the deadline)
 * and logs its exit status and stderr, counting in the output's stats.
 *
 * It must never block the engine (only emit_reload_kill, at shutdown,
 * waits), never pass log-derived text in argv (argv is the configuration's,
 * verbatim), and never signal a process group it did not create.
 */
#include <sys/wait.h>

#include "emitters/emit_int.h"

int emit_reload_start(struct emit_reload *r, const struct strv *argv, int64_t timeout, const char *name,
		      struct emit_output_stats *st)
{
	char err[256];
	st->reloads_started++;
	if (child_start(&r->ch, argv, -1, timeout, err, sizeof err) < 0) {
		log_error("output %s: reload command %s", name, err);
		st->reloads_failed++;
		return -1;
	}
	log_debug("output %s: reload '%s' started (pid %d)", name, argv->v[0], r->ch.pid);
	return 0;
}

bool emit_reload_poll(struct emit_reload *r, const char *name, struct emit_output_stats *st)
{
	int pid = r->ch.pid, status = 0;
	int rc = child_poll(&r->ch, &status);
	if (rc == 0)
		return false;
	if (rc < 0) {
		/* someone else reaped it (should not happen): forget it */
		log_warn("output %s: reload pid %d lost", name, pid);
		st->reloads_failed++;
		return true;
	}
	int64_t ms = (clock_mono_us() - r->ch.start_mono) / 1000;
	bool ok = !r->ch.killed && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	struct buf msg = BUF_INIT;
	child_describe(&r->ch, status, ms, &msg);
	if (ok) {
		log_info("output %s: reload %s", name, buf_str(&msg));
	} else {
		log_warn("output %s: reload %s", name, buf_str(&msg));
		st->reloads_failed++;
		st->reloads_killed += r->ch.killed;
	}
	buf_free(&msg);
	return true;
}

void emit_reload_kill(struct emit_reload *r)
{
	child_kill(&r->ch);
}

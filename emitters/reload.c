/*
 * reload.c - runs an output's reload command after a rewrite: posix_spawnp,
 * no shell, its own process group, stdin and stdout on /dev/null, stderr
 * into a pipe we read without blocking; a deadline after which the whole
 * group gets SIGKILL; the exit status and stderr logged.
 *
 * It must never block the engine (only emit_reload_kill, at shutdown,
 * waits), never pass log-derived text in argv (argv is the configuration's,
 * verbatim), and never signal a process group it did not create.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emitters/emit_int.h"

extern char **environ;

#define ERR_KEEP 4096

int emit_reload_start(struct emit_reload *r, const struct strv *argv, int64_t timeout, const char *name,
		      struct emit_output_stats *st)
{
	if (r->pid > 0)
		BUG("reload of %s started twice", name);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("output %s: reload: pipe: %s", name, strerror(errno));
		st->reloads_failed++;
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
	posix_spawnattr_init(&at);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv->v[0], &fa, &at, argv->v, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(fds[1]);
	st->reloads_started++;
	if (rc != 0) {
		close(fds[0]);
		log_error("output %s: reload command '%s' cannot start: %s", name, argv->v[0], strerror(rc));
		st->reloads_failed++;
		return -1;
	}
	r->pid = pid;
	r->errfd = fds[0];
	buf_reset(&r->err);
	r->killed = false;
	r->start_mono = clock_mono_us();
	r->deadline_mono = r->start_mono + (timeout > 0 ? timeout : 30) * 1000000;
	log_debug("output %s: reload '%s' started (pid %d)", name, argv->v[0], (int)pid);
	return 0;
}

static void drain_stderr(struct emit_reload *r)
{
	char tmp[1024];
	for (;;) {
		ssize_t k = read(r->errfd, tmp, sizeof tmp);
		if (k > 0) {
			if (r->err.len < ERR_KEEP)
				buf_append(&r->err, tmp, MXW_MIN((size_t)k, ERR_KEEP - r->err.len));
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		break;
	}
}

static void finish(struct emit_reload *r, int status, const char *name, struct emit_output_stats *st)
{
	drain_stderr(r);
	close(r->errfd);
	r->errfd = -1;
	int64_t ms = (clock_mono_us() - r->start_mono) / 1000;
	struct buf msg = BUF_INIT;
	while (r->err.len && (r->err.data[r->err.len - 1] == '\n' || r->err.data[r->err.len - 1] == '\r' ||
			      r->err.data[r->err.len - 1] == ' '))
		r->err.data[--r->err.len] = '\0';
	if (r->err.len) {
		buf_appends(&msg, "; stderr: ");
		buf_append_printable(&msg, r->err.data, r->err.len);
	}
	if (r->killed) {
		log_warn("output %s: reload killed after its timeout (%lld ms)%s", name, (long long)ms,
			 buf_str(&msg));
		st->reloads_killed++;
		st->reloads_failed++;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		log_info("output %s: reload done in %lld ms%s", name, (long long)ms, buf_str(&msg));
	} else if (WIFEXITED(status)) {
		log_warn("output %s: reload exited with status %d after %lld ms%s", name, WEXITSTATUS(status),
			 (long long)ms, buf_str(&msg));
		st->reloads_failed++;
	} else {
		log_warn("output %s: reload killed by signal %d after %lld ms%s", name,
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0, (long long)ms, buf_str(&msg));
		st->reloads_failed++;
	}
	buf_free(&msg);
	r->pid = 0;
}

bool emit_reload_poll(struct emit_reload *r, const char *name, struct emit_output_stats *st)
{
	if (r->pid <= 0)
		return false;
	drain_stderr(r);
	int status = 0;
	pid_t w = waitpid(r->pid, &status, WNOHANG);
	if (w == r->pid) {
		if (r->killed)
			kill(-r->pid, SIGKILL); /* grandchildren left in the group */
		finish(r, status, name, st);
		return true;
	}
	if (w < 0 && errno != EINTR) {
		/* someone else reaped it (should not happen): forget it */
		log_warn("output %s: reload pid %d lost: %s", name, (int)r->pid, strerror(errno));
		close(r->errfd);
		r->errfd = -1;
		r->pid = 0;
		st->reloads_failed++;
		return true;
	}
	if (!r->killed && clock_mono_us() >= r->deadline_mono) {
		kill(-r->pid, SIGKILL);
		r->killed = true;
	}
	return false;
}

void emit_reload_kill(struct emit_reload *r)
{
	if (r->pid <= 0)
		return;
	kill(-r->pid, SIGKILL);
	int status;
	while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
		;
	close(r->errfd);
	r->errfd = -1;
	r->pid = 0;
}

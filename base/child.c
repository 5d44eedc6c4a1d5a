/*
 * child.c - a configured command run in the background: posix_spawnp, no
 * shell, its own process group, stdin from a descriptor the caller gives
 * (or /dev/null), stdout on /dev/null, stderr into a pipe read without
 * blocking; a deadline after which the whole group gets SIGKILL.
 *
 * Used by the emitters' reload commands and the notify command. It must
 * never block its caller (only child_kill(), at shutdown, waits), never
 * pass anything but the configuration's argv (log-derived text goes on
 * stdin, if anywhere), and never signal a process group it did not create.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"

extern char **environ;

#define ERR_KEEP 4096

int child_start(struct child *c, const struct strv *argv, int stdin_fd, int64_t timeout, char *err,
		size_t errsz)
{
	if (c->pid > 0)
		BUG("child '%s' started twice", argv->v[0]);
	if (!argv->n) {
		snprintf(err, errsz, "no command");
		return -1;
	}
	int fds[2];
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errsz, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	if (stdin_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, stdin_fd, 0);
	else
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
	if (rc != 0) {
		close(fds[0]);
		snprintf(err, errsz, "'%s' cannot start: %s", argv->v[0], strerror(rc));
		return -1;
	}
	c->pid = pid;
	c->errfd = fds[0];
	buf_reset(&c->err);
	c->killed = false;
	c->start_mono = clock_mono_us();
	c->deadline_mono = c->start_mono + (timeout > 0 ? timeout : 30) * 1000000;
	return 0;
}

static void drain_stderr(struct child *c)
{
	char tmp[1024];
	for (;;) {
		ssize_t k = read(c->errfd, tmp, sizeof tmp);
		if (k > 0) {
			if (c->err.len < ERR_KEEP)
				buf_append(&c->err, tmp, MXW_MIN((size_t)k, ERR_KEEP - c->err.len));
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		break;
	}
}

int child_poll(struct child *c, int *status)
{
	if (c->pid <= 0)
		return 0;
	drain_stderr(c);
	int st = 0;
	pid_t w = waitpid(c->pid, &st, WNOHANG);
	if (w == c->pid) {
		if (c->killed)
			kill(-c->pid, SIGKILL); /* grandchildren left in the group */
		drain_stderr(c);
		close(c->errfd);
		c->errfd = -1;
		c->pid = 0;
		*status = st;
		return 1;
	}
	if (w < 0 && errno != EINTR) {
		close(c->errfd);
		c->errfd = -1;
		c->pid = 0;
		return -1;
	}
	if (!c->killed && clock_mono_us() >= c->deadline_mono) {
		kill(-c->pid, SIGKILL);
		c->killed = true;
	}
	return 0;
}

void child_kill(struct child *c)
{
	if (c->pid <= 0)
		return;
	kill(-c->pid, SIGKILL);
	int status;
	while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
		;
	close(c->errfd);
	c->errfd = -1;
	c->pid = 0;
}

void child_describe(const struct child *c, int status, int64_t ms, struct buf *out)
{
	if (c->killed)
		buf_printf(out, "killed after its timeout (%lld ms)", (long long)ms);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		buf_printf(out, "done in %lld ms", (long long)ms);
	else if (WIFEXITED(status))
		buf_printf(out, "exited with status %d after %lld ms", WEXITSTATUS(status), (long long)ms);
	else
		buf_printf(out, "killed by signal %d after %lld ms",
			   WIFSIGNALED(status) ? WTERMSIG(status) : 0, (long long)ms);
	size_t n = c->err.len;
	while (n && (c->err.data[n - 1] == '\n' || c->err.data[n - 1] == '\r' || c->err.data[n - 1] == ' '))
		n--;
	if (n) {
		buf_appends(out, "; stderr: ");
		buf_append_printable(out, c->err.data, n);
	}
}

void child_free(struct child *c)
{
	buf_free(&c->err);
}

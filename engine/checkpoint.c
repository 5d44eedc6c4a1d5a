/*
 * checkpoint.c - the aggregator's checkpoint while `run` follows logs,
 * written by a forked child so that it never stalls ingestion.
 *
 * A checkpoint in the batch (batch.c, eng_checkpoint_put) serialises the
 * whole state on the engine thread: with a million tracked addresses that
 * is hundreds of MB and seconds during which no line is read. Instead,
 * right after a batch commits (so that the state holds exactly the
 * committed events, up to db_max_event_id), the engine forks: the child
 * has a copy-on-write snapshot of the state, writes it to DB.ckpt-SEQ
 * (db_ckpt_file_*, lower CPU priority, killed if the engine dies) and
 * exits. The engine goes on reading at once (a fork copies page tables
 * only: milliseconds); when the child has exited 0, the row naming the
 * image goes into the next batch (db_checkpoint_put_file). Until then the
 * last checkpoint stays, and a crash replays from it as before.
 *
 * Memory: the pages the engine writes while the child runs are copied,
 * so the system needs at most the state's size again for a few seconds.
 * When fork fails (no memory), the checkpoint is taken in the batch.
 * `import` does not fork: its pipe's writer thread writes the image.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/internal.h"

bool eng_checkpoint_forks(const struct engine *e)
{
	return !e->importing && !e->pipe && !e->ckpt_nofork && !e->closing;
}

static _Noreturn void child(struct engine *e, uint64_t seq, pid_t parent)
{
	/* no log_* (its lock may be held by a thread that is not here), no
	 * SQLite: the image to its file, a line on stderr when it fails */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	setpriority(PRIO_PROCESS, 0, 10);
	char err[PATH_MAX + 160] = "";
	int64_t newest = 0;
	struct db_ckpt_file *f = db_ckpt_file_begin(e->db_path, seq, err, sizeof err);
	int rc = f ? aggregator_checkpoint_write(e->agg, db_ckpt_file_stream(f), &newest) : -1;
	if (f && db_ckpt_file_finish(f, newest, err, sizeof err) < 0)
		rc = -1;
	if (rc < 0) {
		char line[sizeof err + 32];
		int n =
		    snprintf(line, sizeof line, "mxwarden: checkpoint writer: %s\n", err[0] ? err : "failed");
		if (n > 0 && write(2, line, (size_t)MXW_MIN((size_t)n, sizeof line - 1)) < 0)
			_exit(1);
	}
	_exit(rc < 0 ? 1 : 0);
}

/* Right after a commit, with no batch open: start the writer. */
void eng_checkpoint_fork(struct engine *e)
{
	int64_t max_id = db_max_event_id(e->db);
	if (max_id < 0) {
		log_warn("checkpoint: %s", db_errmsg(e->db));
		return;
	}
	uint64_t seq = (uint64_t)clock_now_us();
	if (seq <= e->ckpt_seq)
		seq = e->ckpt_seq + 1;
	fflush(NULL); /* nothing buffered is written twice */
	int64_t t0 = clock_mono_us();
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0)
		child(e, seq, parent);
	int64_t took = clock_mono_us() - t0;
	if (pid < 0) {
		log_warn("checkpoint: cannot fork the writer (%s): taking it in the next batch",
			 strerror(errno));
		e->ckpt_nofork = true; /* until a fork works again: see eng_checkpoint_reap */
		return;
	}
	e->ckpt_pid = pid;
	e->ckpt_seq = seq;
	e->ckpt_fork_at = clock_now();
	e->ckpt_fork_lines = e->lines;
	e->ckpt_fork_max_id = max_id;
	e->ckpt_fork_us = t0;
	if (took > e->ckpt_fork_max_us)
		e->ckpt_fork_max_us = took;
	log_debug("checkpoint: writer %d started (fork took %.1f ms)", (int)pid, (double)took / 1000);
}

/* The writer's end (from the tick and on SIGCHLD): when it wrote the
 * image, its row goes into the open batch (begun for it when none is). */
void eng_checkpoint_reap(struct engine *e)
{
	if (e->ckpt_nofork && !e->ckpt_pid && clock_mono_us() - e->ckpt_last_us > 600 * 1000000LL)
		e->ckpt_nofork = false; /* try forking again now and then */
	if (!e->ckpt_pid)
		return;
	int st;
	pid_t w = waitpid(e->ckpt_pid, &st, WNOHANG);
	if (w == 0 || (w < 0 && errno == EINTR))
		return;
	e->ckpt_pid = 0;
	if (w < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		log_warn("checkpoint: the writer failed (%s %d): the last checkpoint stays",
			 w > 0 && WIFSIGNALED(st) ? "signal" : "status",
			 w > 0 ? (WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st)) : -1);
		return;
	}
	if (e->db_down || (!db_in_batch(e->db) && eng_batch_begin(e) < 0))
		return; /* the image stays unnamed: pruned at the next checkpoint */
	if (db_checkpoint_put_file(e->db, e->ckpt_fork_at, (int64_t)e->ckpt_fork_lines, e->ckpt_fork_max_id,
				   e->ckpt_seq) < 0) {
		log_warn("checkpoint: %s (the last checkpoint stays)", db_errmsg(e->db));
		return;
	}
	e->ckpt_in_batch = true;
	e->ckpt_put_lines = e->ckpt_fork_lines;
	log_debug("checkpoint: written by the writer in %.2fs",
		  (double)(clock_mono_us() - e->ckpt_fork_us) / 1e6);
}

/* At the end: a writer still running is stopped (the final checkpoint
 * follows, on this thread). */
void eng_checkpoint_abort(struct engine *e)
{
	if (!e->ckpt_pid)
		return;
	kill(e->ckpt_pid, SIGKILL);
	while (waitpid(e->ckpt_pid, NULL, 0) < 0 && errno == EINTR)
		;
	e->ckpt_pid = 0;
}

/*
 * load.c - the root-run loader (`mxwarden load FILE`, started by
 * mxwarden-load@.path when the daemon replaces FILE) and the status file it
 * leaves beside FILE for the daemon (emitters.h, "The loader").
 *
 * The daemon writes the blocklists unprivileged; loading a firewall set
 * needs CAP_NET_ADMIN. The loader trusts nothing in the file: the format
 * and the set name come from the root-owned configuration (the [output]
 * whose path is FILE), the file must pass the format's validator and name
 * no set, table or chain but the configured one, and only the checked
 * bytes, read once, are handed to the tool (on a sealed memfd), so a
 * compromised daemon can change which addresses are blocked, as it can
 * anyway, and nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emitters/emit_int.h"

#define LOAD_MAX_BYTES (256LL << 20)

/* The tool for each format that needs one; feed: the checked bytes go to
 * its standard input (Postfix reads its table itself). */
static const struct loader {
	const char *format;
	const char *argv[4];
	bool feed;
} loaders[] = {
    {"ipset", {"ipset", "restore", NULL}, true},
    {"nft", {"nft", "-f", "/dev/stdin", NULL}, true},
    {"iptables", {"iptables-restore", "--noflush", NULL}, true},
    {"ip6tables", {"ip6tables-restore", "--noflush", NULL}, true},
    {"postfix", {"postfix", "reload", NULL}, false},
    {"postscreen", {"postfix", "reload", NULL}, false},
};

static bool name_is(const char *p, size_t n, const char *set, const char *const *suffixes)
{
	size_t sl = strlen(set);
	if (n < sl || memcmp(p, set, sl) != 0)
		return false;
	for (const char *const *s = suffixes; *s; s++)
		if (n - sl == strlen(*s) && memcmp(p + sl, *s, n - sl) == 0)
			return true;
	return false;
}

/* The word at p (up to a blank or the end of the line). */
static size_t word(const char *p, const char *end)
{
	size_t n = 0;
	while (p + n < end && p[n] != ' ' && p[n] != '\t' && p[n] != '\n')
		n++;
	return n;
}

int emit_load_check_names(const char *format, const char *set, const char *text, size_t len, struct buf *err)
{
	static const char *const ipset_names[] = {"4", "6", "4-new", "6-new", NULL};
	static const char *const exact[] = {"", NULL};
	const char *p = text, *end = text + len;
	for (int line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		/* the words that name a set, a table or a chain, by format */
		const char *names[2] = {NULL, NULL};
		const char *const *ok = exact;
		if (!strcmp(format, "ipset")) {
			ok = ipset_names;
			static const char *const kw[] = {"create ", "add ", "destroy ", "swap "};
			for (size_t k = 0; k < MXW_ARRAY_LEN(kw); k++) {
				size_t kl = strlen(kw[k]);
				if ((size_t)(le - p) > kl && !memcmp(p, kw[k], kl)) {
					names[0] = p + kl;
					if (k == 3)
						names[1] = names[0] + word(names[0], le) + 1;
				}
			}
		} else if (!strcmp(format, "nft")) {
			static const char *const kw[] = {"table inet ", "delete table inet "};
			for (size_t k = 0; k < MXW_ARRAY_LEN(kw); k++)
				if ((size_t)(le - p) > strlen(kw[k]) && !memcmp(p, kw[k], strlen(kw[k])))
					names[0] = p + strlen(kw[k]);
		} else if (!strcmp(format, "iptables") || !strcmp(format, "ip6tables")) {
			if (le - p > 1 && p[0] == ':')
				names[0] = p + 1;
			else if (le - p > 3 && !memcmp(p, "-A ", 3))
				names[0] = p + 3;
		}
		for (int k = 0; k < 2; k++) {
			if (!names[k] || names[k] >= le)
				continue;
			size_t n = word(names[k], le);
			if (!name_is(names[k], n, set, ok)) {
				buf_printf(err, "line %d: names '", line);
				buf_append_printable(err, names[k], n);
				buf_printf(err, "', not the configured set '%s'", set);
				return -1;
			}
		}
		p = le + 1;
	}
	return 0;
}

/* Read the regular file path (not through a symbolic link) into out. */
static int read_file(const char *path, struct buf *out, struct buf *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		buf_printf(err, "cannot open: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > LOAD_MAX_BYTES) {
		buf_appends(err, S_ISREG(st.st_mode) ? "larger than 256 MiB" : "not a regular file");
		close(fd);
		return -1;
	}
	char tmp[65536];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof tmp)) > 0) {
		buf_append(out, tmp, (size_t)n);
		if ((int64_t)out->len > LOAD_MAX_BYTES)
			break;
	}
	int e = errno;
	close(fd);
	if (n < 0 || (int64_t)out->len > LOAD_MAX_BYTES) {
		buf_printf(err, "read: %s", n < 0 ? strerror(e) : "larger than 256 MiB");
		return -1;
	}
	return 0;
}

/* The checked bytes on a sealed memfd, at offset 0 (the tool's stdin). */
static int memfd_of(const struct buf *b)
{
	int fd = memfd_create("mxwarden-load", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = write(fd, b->data + off, b->len - off);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

void emit_status_path(const char *path, struct buf *out)
{
	buf_printf(out, "%s.status", path);
}

int emit_status_write(const char *path, const struct emit_status *s)
{
	struct buf sp = BUF_INIT, text = BUF_INIT;
	emit_status_path(path, &sp);
	buf_printf(&text, "status=%s\ntime=%lld\nexit=%d\ncommand=", s->ok ? "ok" : "failed",
		   (long long)s->time, s->exit_code);
	buf_append_printable(&text, s->command, strlen(s->command));
	buf_appends(&text, "\nmessage=");
	buf_append_printable(&text, s->message, strlen(s->message));
	buf_appendc(&text, '\n');
	/* beside the blocklist, in the daemon's directory: a temp file made with
	 * O_EXCL (never through a link the directory's owner planted) renamed
	 * over the old one, owned by the directory's owner so the daemon reads it */
	char *dir = xstrdup(buf_str(&sp));
	struct stat dst;
	int rc = -1;
	if (stat(dirname(dir), &dst) == 0) {
		struct buf tp = BUF_INIT;
		buf_printf(&tp, "%s.XXXXXX", buf_str(&sp));
		int fd = mkostemp(tp.data, O_CLOEXEC);
		if (fd >= 0) {
			bool ok = write(fd, text.data, text.len) == (ssize_t)text.len &&
				  fchmod(fd, 0640) == 0 &&
				  (geteuid() != 0 || fchown(fd, dst.st_uid, dst.st_gid) == 0);
			ok = close(fd) == 0 && ok;
			if (ok && rename(tp.data, buf_str(&sp)) == 0)
				rc = 0;
			else
				unlink(tp.data);
		}
		buf_free(&tp);
	}
	free(dir);
	buf_free(&sp);
	buf_free(&text);
	return rc;
}

/* dst = src cut to size bytes, NUL included */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = 0;
}

int emit_status_read(const char *path, struct emit_status *s)
{
	memset(s, 0, sizeof *s);
	struct buf sp = BUF_INIT;
	emit_status_path(path, &sp);
	FILE *f = fopen(buf_str(&sp), "re");
	buf_free(&sp);
	if (!f)
		return -1;
	char line[1024];
	bool have_status = false;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "status=", 7)) {
			s->ok = !strcmp(line + 7, "ok");
			have_status = true;
		} else if (!strncmp(line, "time=", 5)) {
			s->time = strtoll(line + 5, NULL, 10);
		} else if (!strncmp(line, "exit=", 5)) {
			s->exit_code = (int)strtol(line + 5, NULL, 10);
		} else if (!strncmp(line, "command=", 8)) {
			copy_str(s->command, sizeof s->command, line + 8);
		} else if (!strncmp(line, "message=", 8)) {
			copy_str(s->message, sizeof s->message, line + 8);
		}
	}
	fclose(f);
	return have_status ? 0 : -1;
}

int emit_load(const struct config *c, const char *path, struct emit_status *s)
{
	memset(s, 0, sizeof *s);
	s->time = clock_now();
	s->exit_code = -1;
	snprintf(s->command, sizeof s->command, "(none)");
	const struct output_conf *oc = NULL;
	char *real = realpath(path, NULL);
	for (size_t i = 0; i < c->n_outputs && !oc; i++) {
		char *r = realpath(c->outputs[i].path, NULL);
		if (!strcmp(c->outputs[i].path, path) || (r && real && !strcmp(r, real)))
			oc = &c->outputs[i];
		free(r);
	}
	free(real);
	if (!oc) {
		snprintf(s->message, sizeof s->message, "no [output] of the configuration writes %s", path);
		return -1;
	}
	const struct loader *ld = NULL;
	for (size_t i = 0; i < MXW_ARRAY_LEN(loaders); i++)
		if (!strcmp(loaders[i].format, oc->format))
			ld = &loaders[i];
	if (!ld) {
		snprintf(s->message, sizeof s->message,
			 "[output %s]: format %s needs no loader (its consumer reads the file)", oc->name,
			 oc->format);
		return -1;
	}
	struct strv argv = {NULL, 0};
	size_t used = 0;
	for (const char *const *a = ld->argv; *a; a++) {
		strv_add(&argv, *a);
		used += (size_t)snprintf(s->command + used, sizeof s->command - used, "%s%s", used ? " " : "",
					 *a);
	}

	struct buf text = BUF_INIT, err = BUF_INIT;
	const struct emit_format *f = emit_format_find(oc->format);
	const char *set = oc->set_name ? oc->set_name : "mxwarden";
	int rc = -1, fd = -1;
	if (read_file(path, &text, &err) < 0 || f->validate(text.data, text.len, &err) < 0 ||
	    emit_load_check_names(oc->format, set, text.data, text.len, &err) < 0) {
		snprintf(s->message, sizeof s->message, "%s refused: %s", path, buf_str(&err));
		goto out;
	}
	if (ld->feed && (fd = memfd_of(&text)) < 0) {
		snprintf(s->message, sizeof s->message, "memfd: %s", strerror(errno));
		goto out;
	}
	struct child ch;
	memset(&ch, 0, sizeof ch);
	char cerr[256];
	if (child_start(&ch, &argv, fd, oc->reload_timeout, cerr, sizeof cerr) < 0) {
		snprintf(s->message, sizeof s->message, "%s", cerr);
		goto out;
	}
	int status = 0;
	while (child_poll(&ch, &status) == 0)
		usleep(10000);
	int64_t ms = (clock_mono_us() - ch.start_mono) / 1000;
	struct buf d = BUF_INIT;
	child_describe(&ch, status, ms, &d);
	snprintf(s->message, sizeof s->message, "%s", buf_str(&d));
	buf_free(&d);
	s->exit_code =
	    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	s->ok = !ch.killed && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	child_free(&ch);
	rc = s->ok ? 0 : -1;
out:
	s->time = clock_now();
	if (fd >= 0)
		close(fd);
	strv_free(&argv);
	buf_free(&text);
	buf_free(&err);
	return rc;
}

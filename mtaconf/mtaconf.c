/*
 * mtaconf.c - Postfix mynetworks and Exim relay_from_hosts into trusted
 * networks (see mtaconf.h for the contract).
 *
 * Both MTAs match their lists left to right and stop at the first match,
 * so the list is read in order with the exclusions seen so far: a network
 * listed after "!X" is added without X (split into the pieces around it),
 * and once an exclusion of unknown extent was seen nothing more is added.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mtaconf/mtaconf.h"

extern char **environ;

#define FILE_MAX       (4u << 20) /* a /file/name, a cidr table, a program's output */
#define DEPTH_MAX      4	  /* /file/name inside /file/name ... */
#define RUN_TIMEOUT_MS 10000

struct rd {
	struct prefix_list *nets;
	struct strv *src, *warn;
	struct prefix_list excl; /* exclusions seen so far, in list order */
	char *opaque;		 /* set after an exclusion of unknown extent */
	bool capped;
};

static void warnf(struct rd *r, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warnf(struct rd *r, const char *what, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s: ", what);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	strv_add(r->warn, buf_str(&b));
	buf_free(&b);
}

/* pattern text for a message: masked, at most 120 bytes */
static const char *shown(struct buf *b, const char *s, size_t n)
{
	buf_reset(b);
	buf_append_printable(b, s, MXW_MIN(n, 120));
	if (n > 120)
		buf_appends(b, "...");
	return buf_str(b);
}

static void bit_flip(struct ipaddr *a, unsigned i)
{
	a->a[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
}

/* p without x (x inside p, longer): the sibling of each of x's ancestors
 * below p, which together cover p except x. */
static void split_around(const struct prefix *p, const struct prefix *x, struct prefix_list *out)
{
	for (unsigned l = p->len + 1u; l <= x->len; l++) {
		struct prefix s;
		prefix_from_addr(&s, &x->addr, l);
		bit_flip(&s.addr, l - 1);
		prefix_list_add(out, &s);
	}
}

static void add_trusted(struct rd *r, const struct prefix *p, const char *what, const char *tok, size_t n)
{
	if (r->capped)
		return; /* said once */
	struct buf t = BUF_INIT;
	if (r->opaque) {
		warnf(r, what,
		      "'%s' not allow-listed: it comes after the exclusion '%s', whose extent is not known",
		      shown(&t, tok, n), r->opaque);
		buf_free(&t);
		return;
	}
	unsigned floor = p->addr.family == IPADDR_V4 ? 8 : 16;
	if (p->len < floor) {
		warnf(r, what,
		      "'%s' not allow-listed: wider than /%u (an MTA that trusts it relays for much of the "
		      "Internet)",
		      shown(&t, tok, n), floor);
		buf_free(&t);
		return;
	}
	/* what is left of p after the exclusions before it */
	struct prefix_list cur = {0}, next = {0};
	prefix_list_add(&cur, p);
	for (size_t i = 0; i < r->excl.n && cur.n; i++) {
		const struct prefix *x = &r->excl.v[i];
		next.n = 0;
		for (size_t j = 0; j < cur.n; j++) {
			if (prefix_contains_prefix(x, &cur.v[j]))
				continue; /* excluded as a whole */
			if (prefix_contains_prefix(&cur.v[j], x))
				split_around(&cur.v[j], x, &next);
			else
				prefix_list_add(&next, &cur.v[j]);
		}
		struct prefix_list tmp = cur;
		cur = next;
		next = tmp;
	}
	for (size_t j = 0; j < cur.n; j++) {
		bool dup = false;
		for (size_t k = 0; k < r->nets->n && !dup; k++)
			dup = prefix_cmp(&r->nets->v[k], &cur.v[j]) == 0;
		if (dup)
			continue;
		if (r->nets->n >= MTACONF_MAX) {
			if (!r->capped)
				warnf(r, what, "more than %d trusted networks: the rest is not allow-listed",
				      MTACONF_MAX);
			r->capped = true;
			break;
		}
		prefix_list_add(r->nets, &cur.v[j]);
		strv_add(r->src, what);
	}
	prefix_list_free(&cur);
	prefix_list_free(&next);
	buf_free(&t);
}

/* An exclusion we cannot read: nothing after it is allow-listed. */
static void set_opaque(struct rd *r, const char *tok, size_t n)
{
	if (r->opaque)
		return;
	struct buf t = BUF_INIT;
	r->opaque = xstrdup(shown(&t, tok, n));
	buf_free(&t);
}

/* One pattern that names networks (or nothing readable): added, or
 * recorded as an exclusion. */
static void take(struct rd *r, bool neg, const struct prefix *p, const char *what, const char *tok, size_t n)
{
	if (neg)
		prefix_list_add(&r->excl, p);
	else
		add_trusted(r, p, what, tok, n);
}

/* A pattern we do not read: a warning when it would have added networks,
 * the end of the list when it would have excluded some. */
static void unread(struct rd *r, bool neg, const char *what, const char *tok, size_t n, const char *why)
{
	struct buf t = BUF_INIT;
	if (neg) {
		warnf(r, what, "the exclusion '!%s' is not read (%s): nothing after it is allow-listed",
		      shown(&t, tok, n), why);
		set_opaque(r, tok, n);
	} else {
		warnf(r, what,
		      "'%s' is not read (%s); allow-list its networks with [safety] allow if they are ours",
		      shown(&t, tok, n), why);
	}
	buf_free(&t);
}

static char *read_file(const char *path, size_t *len, char *err, size_t errsz)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		snprintf(err, errsz, "%s", strerror(errno));
		return NULL;
	}
	struct buf b = BUF_INIT;
	char tmp[8192];
	size_t k;
	while ((k = fread(tmp, 1, sizeof tmp, fp)) > 0 && b.len <= FILE_MAX)
		buf_append(&b, tmp, k);
	bool bad = ferror(fp);
	fclose(fp);
	if (bad || b.len > FILE_MAX) {
		snprintf(err, errsz, "%s", bad ? "read error" : "larger than 4 MiB");
		buf_free(&b);
		return NULL;
	}
	*len = b.len;
	if (!b.data)
		return xstrdup("");
	return b.data;
}

/* --------------------------------------------------------------- Postfix */

/* An address pattern of a Postfix list: "a.b.c.d[/len]", "[v6][/len]",
 * "[v6/len]". Host bits must be zero (Postfix refuses the list otherwise).
 * Returns 0, -1 when it is not an address, -2 for host bits. */
static int pf_addr(const char *s, size_t n, bool brackets_needed_v6, struct prefix *p)
{
	char tmp[PREFIX_STRLEN + 8];
	size_t m = 0;
	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return -1;
		size_t in = (size_t)(close - s - 1), rest = n - (size_t)(close - s) - 1;
		if (in + rest >= sizeof tmp || (rest && close[1] != '/'))
			return -1;
		memcpy(tmp, s + 1, in);
		memcpy(tmp + in, close + 1, rest);
		m = in + rest;
	} else {
		if (n >= sizeof tmp || (brackets_needed_v6 && memchr(s, ':', n)))
			return -1;
		memcpy(tmp, s, n);
		m = n;
	}
	if (prefix_parse(p, tmp, m, false) < 0)
		return -1;
	struct prefix strict;
	return prefix_parse(&strict, tmp, m, true) < 0 ? -2 : 0;
}

static void pf_list(struct rd *r, const char *s, size_t n, const char *what, int depth, bool comments,
		    bool neg);

/* "cidr:/file": the patterns of the table (results are ignored for
 * mynetworks). "if PATTERN" narrows the patterns up to its "endif";
 * "if !PATTERN" and "!pattern" lines are not read. */
static void pf_cidr(struct rd *r, bool neg, const char *tok, size_t tn, const char *path, const char *what)
{
	struct buf label = BUF_INIT, t = BUF_INIT;
	buf_printf(&label, "%s cidr:%s", what, path);
	char err[128];
	size_t len;
	char *text = read_file(path, &len, err, sizeof err);
	if (!text) {
		buf_printf(&t, "cannot read it: %s", err);
		unread(r, neg, what, tok, tn, buf_str(&t));
		goto out;
	}
	/* the if..endif stack: the network each level is limited to, or
	 * "unreadable" (if !PATTERN, a bad pattern) */
	struct prefix stack[16];
	bool stack_bad[16];
	int sp = 0, ln = 0;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		ln++;
		if (*line == ' ' || *line == '\t')
			continue; /* continues the result of the line before */
		size_t pn = strcspn(line, " \t\r");
		if (!pn || line[0] == '#')
			continue;
		char *arg = line + pn;
		arg += strspn(arg, " \t");
		size_t an = strcspn(arg, " \t\r");
		bool inside_bad = false;
		for (int i = 0; i < sp; i++)
			inside_bad |= stack_bad[i];
		if (pn == 5 && memcmp(line, "endif", 5) == 0) {
			if (sp)
				sp--;
			continue;
		}
		if (pn == 2 && memcmp(line, "if", 2) == 0) {
			if (sp == 16) {
				buf_reset(&t);
				buf_printf(&t, "line %d: if..endif nested too deep", ln);
				unread(r, neg, buf_str(&label), line, strlen(line), buf_str(&t));
				goto done;
			}
			struct prefix p;
			bool bad = an == 0 || arg[0] == '!' || pf_addr(arg, an, false, &p) != 0;
			if (bad && !inside_bad) {
				buf_reset(&t);
				buf_printf(&t, "line %d: an 'if' block this reader does not follow", ln);
				unread(r, neg, buf_str(&label), line, strlen(line), buf_str(&t));
			}
			stack_bad[sp] = bad;
			if (!bad)
				stack[sp] = p;
			sp++;
			continue;
		}
		if (inside_bad)
			continue; /* reported at its "if" */
		if (line[0] == '!') {
			buf_reset(&t);
			buf_printf(&t, "line %d: matches every address but one network", ln);
			unread(r, neg, buf_str(&label), line, pn, buf_str(&t));
			continue;
		}
		struct prefix p;
		int rc = pf_addr(line, pn, false, &p);
		if (rc != 0) {
			buf_reset(&t);
			buf_printf(&t, "line %d: %s", ln,
				   rc == -2 ? "host bits set below the length (Postfix refuses the table)"
					    : "not an address pattern");
			unread(r, neg, buf_str(&label), line, pn, buf_str(&t));
			continue;
		}
		/* limited to the enclosing if blocks */
		bool none = false;
		for (int i = 0; i < sp && !none; i++) {
			if (prefix_contains_prefix(&stack[i], &p))
				continue;
			if (prefix_contains_prefix(&p, &stack[i]))
				p = stack[i];
			else
				none = true;
		}
		if (!none)
			take(r, neg, &p, buf_str(&label), line, pn);
	}
done:
	free(text);
out:
	buf_free(&label);
	buf_free(&t);
}

/* One pattern; neg: inside a "!/file/name", where every pattern excludes. */
static void pf_pattern(struct rd *r, const char *s, size_t n, const char *what, int depth, bool neg)
{
	if (n && s[0] == '!') {
		if (neg || n == 1) {
			unread(r, true, what, s + 1, n - 1,
			       neg ? "an exclusion inside an excluded file" : "a '!' alone");
			return;
		}
		neg = true;
		s++;
		n--;
	}
	if (s[0] == '/') {
		char path[4096];
		if (n >= sizeof path) {
			unread(r, neg, what, s, n, "path too long");
			return;
		}
		memcpy(path, s, n);
		path[n] = '\0';
		char err[128];
		size_t len;
		char *text = depth < DEPTH_MAX ? read_file(path, &len, err, sizeof err) : NULL;
		if (!text) {
			struct buf t = BUF_INIT;
			buf_printf(&t, "cannot read it: %s",
				   depth < DEPTH_MAX ? err : "files nested too deep");
			unread(r, neg, what, s, n, buf_str(&t));
			buf_free(&t);
			return;
		}
		struct buf label = BUF_INIT;
		buf_printf(&label, "%s %s", what, path);
		pf_list(r, text, len, buf_str(&label), depth + 1, true, neg);
		buf_free(&label);
		free(text);
		return;
	}
	if (s[0] == '{') {
		unread(r, neg, what, s, n, "a {...} group");
		return;
	}
	struct prefix p;
	int rc = pf_addr(s, n, true, &p);
	if (rc == 0) {
		take(r, neg, &p, what, s, n);
		return;
	}
	if (rc == -2) {
		unread(r, neg, what, s, n, "host bits set below the length: Postfix refuses the whole list");
		return;
	}
	const char *colon = memchr(s, ':', n);
	if (colon && s[0] != '[') {
		size_t typelen = (size_t)(colon - s);
		if (typelen == 4 && memcmp(s, "cidr", 4) == 0 && colon + 1 < s + n && colon[1] == '/') {
			char path[4096];
			size_t pl = n - 5;
			if (pl >= sizeof path) {
				unread(r, neg, what, s, n, "path too long");
				return;
			}
			memcpy(path, colon + 1, pl);
			path[pl] = '\0';
			pf_cidr(r, neg, s, n, path, what);
			return;
		}
		struct buf t = BUF_INIT;
		if (prefix_parse(&p, s, n, false) == 0)
			buf_appends(
			    &t,
			    "an IPv6 address must be inside [] in a Postfix list, or it is read as a table");
		else
			buf_printf(&t, "a table of type %.*s; only cidr: tables are read",
				   (int)MXW_MIN(typelen, 40), s);
		unread(r, neg, what, s, n, buf_str(&t));
		buf_free(&t);
		return;
	}
	unread(r, neg, what, s, n,
	       "a host or domain name: Postfix matches the client's name, an address cannot be told from it");
}

/* Patterns separated by commas or blanks; braces group; in files, '#'
 * starts a comment that runs to the end of the line. */
static void pf_list(struct rd *r, const char *s, size_t n, const char *what, int depth, bool comments,
		    bool neg)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && strchr(" \t\r\n,", s[i]))
			i++;
		if (i >= n)
			break;
		if (comments && s[i] == '#') {
			while (i < n && s[i] != '\n')
				i++;
			continue;
		}
		size_t b = i;
		int braces = 0;
		while (i < n && (braces > 0 || !strchr(" \t\r\n,", s[i]))) {
			if (s[i] == '{')
				braces++;
			else if (s[i] == '}' && braces > 0)
				braces--;
			i++;
		}
		pf_pattern(r, s + b, i - b, what, depth, neg);
	}
}

void mtaconf_postfix_list(const char *value, const char *what, struct prefix_list *nets, struct strv *src,
			  struct strv *warn)
{
	struct rd r = {.nets = nets, .src = src, .warn = warn};
	pf_list(&r, value, strlen(value), what, 0, false, false);
	prefix_list_free(&r.excl);
	free(r.opaque);
}

/* ------------------------------------------------------------------ Exim */

static void ex_item(struct rd *r, const char *s, size_t n, const char *what)
{
	bool neg = false;
	if (n && s[0] == '!') {
		neg = true;
		s++;
		n--;
		while (n && (*s == ' ' || *s == '\t'))
			s++, n--;
	}
	if (!n)
		return; /* an empty item matches only a host with an empty name */
	struct prefix p;
	if (n == 1 && s[0] == '*') {
		if (!neg) {
			unread(r, false, what, s, n, "matches every host");
			return;
		}
		prefix_parse(&p, "0.0.0.0/0", 9, true);
		prefix_list_add(&r->excl, &p);
		prefix_parse(&p, "::/0", 4, true);
		prefix_list_add(&r->excl, &p);
		return;
	}
	/* Exim masks the address with the length: 192.0.2.7/24 is the /24 */
	char tmp[PREFIX_STRLEN + 8];
	const char *a = s;
	size_t an = n;
	if (n > 2 && s[0] == '[' && memchr(s, ']', n)) {
		const char *close = memchr(s, ']', n);
		size_t in = (size_t)(close - s - 1), rest = n - (size_t)(close - s) - 1;
		if (in + rest < sizeof tmp) {
			memcpy(tmp, s + 1, in);
			memcpy(tmp + in, close + 1, rest);
			a = tmp;
			an = in + rest;
		}
	}
	if (prefix_parse(&p, a, an, false) == 0) {
		take(r, neg, &p, what, s, n);
		return;
	}
	const char *why = s[0] == '+'	      ? "a named list"
			  : memchr(s, ';', n) ? "a lookup"
			  : n == 3 && !memcmp(s, "@[]", 3)
			      ? "this host's own addresses (protected_networks has them)"
			  : s[0] == '^' ? "a regular expression on the host name"
					: "a host name pattern: an address cannot be told from it";
	unread(r, neg, what, s, n, why);
}

void mtaconf_exim_hostlist(const char *value, const char *what, struct prefix_list *nets, struct strv *src,
			   struct strv *warn)
{
	struct rd r = {.nets = nets, .src = src, .warn = warn};
	const char *s = value;
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	if (strchr(s, '$')) {
		struct buf t = BUF_INIT;
		warnf(&r, what, "'%s' is expanded when Exim matches it; not read", shown(&t, s, strlen(s)));
		buf_free(&t);
		return;
	}
	char sep = ':';
	if (s[0] == '<' && s[1] && !strchr(" \t\n", s[1]) &&
	    !((s[1] | 0x20) >= 'a' && (s[1] | 0x20) <= 'z') && !(s[1] >= '0' && s[1] <= '9')) {
		sep = s[1];
		s += 2;
	}
	struct buf item = BUF_INIT;
	for (;;) {
		buf_reset(&item);
		while (*s && !(*s == sep && !(sep == ':' && s[1] == ':'))) {
			if (sep == ':' && s[0] == ':' && s[1] == ':')
				s++; /* "::" is a literal colon */
			buf_appendc(&item, *s++);
		}
		const char *b = buf_str(&item);
		size_t n = item.len;
		while (n && strchr(" \t\r\n", b[n - 1]))
			n--;
		while (n && strchr(" \t\r\n", *b))
			b++, n--;
		ex_item(&r, b, n, what);
		if (!*s)
			break;
		s++;
	}
	buf_free(&item);
	prefix_list_free(&r.excl);
	free(r.opaque);
}

/* -------------------------------------------------------------- programs */

/* The program's path: $PATH, then the sbin directories (mxwarden may run
 * with a PATH that lacks them). NULL when none is executable. */
static char *find_program(const char *name)
{
	const char *path = getenv("PATH");
	struct buf dirs = BUF_INIT, p = BUF_INIT;
	buf_printf(&dirs, "%s:/usr/sbin:/usr/local/sbin:/sbin:/usr/bin", path ? path : "");
	char *save = NULL, *out = NULL;
	char *d = xstrdup(buf_str(&dirs));
	for (char *t = strtok_r(d, ":", &save); t && !out; t = strtok_r(NULL, ":", &save)) {
		if (t[0] != '/')
			continue;
		buf_reset(&p);
		buf_printf(&p, "%s/%s", t, name);
		if (access(buf_str(&p), X_OK) == 0)
			out = xstrdup(buf_str(&p));
	}
	free(d);
	buf_free(&dirs);
	buf_free(&p);
	return out;
}

/* Run argv (no shell), stdout into out, stderr into errout (first 2 KiB).
 * Returns the exit status, or -1 (errout says why: cannot start, timeout,
 * output too large). */
static int run(char *const argv[], struct buf *out, struct buf *errout)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0) {
		buf_printf(errout, "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(pe, O_CLOEXEC) < 0) {
		buf_printf(errout, "pipe: %s", strerror(errno));
		close(po[0]);
		close(po[1]);
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawnattr_init(&at);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(po[1]);
	close(pe[1]);
	if (rc != 0) {
		close(po[0]);
		close(pe[0]);
		buf_printf(errout, "cannot start %s: %s", argv[0], strerror(rc));
		return -1;
	}
	struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
	int64_t deadline = clock_mono_us() + RUN_TIMEOUT_MS * 1000LL;
	const char *fail = NULL;
	while ((fds[0].fd >= 0 || fds[1].fd >= 0) && !fail) {
		int64_t left = (deadline - clock_mono_us()) / 1000;
		if (left <= 0) {
			fail = "timed out after 10 s";
			break;
		}
		int k = poll(fds, 2, (int)left);
		if (k < 0 && errno != EINTR) {
			fail = "poll failed";
			break;
		}
		for (int i = 0; i < 2 && k > 0; i++) {
			if (fds[i].fd < 0 || !fds[i].revents)
				continue;
			char tmp[8192];
			ssize_t got = read(fds[i].fd, tmp, sizeof tmp);
			if (got <= 0) {
				if (got < 0 && errno == EINTR)
					continue;
				close(fds[i].fd);
				fds[i].fd = -1;
			} else if (i == 0) {
				buf_append(out, tmp, (size_t)got);
				if (out->len > FILE_MAX)
					fail = "more than 4 MiB of output";
			} else if (errout->len < 2048) {
				buf_append(errout, tmp, MXW_MIN((size_t)got, 2048 - errout->len));
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	if (fail)
		kill(pid, SIGKILL);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (fail) {
		buf_reset(errout);
		buf_printf(errout, "%s %s", argv[0], fail);
		return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* the line of a program's stderr that says why (Postfix's "fatal:" line,
 * after its warnings), else the first one; masked, for a message */
static void first_line(struct buf *dst, const struct buf *err)
{
	const char *s = buf_str(err);
	const char *f = strstr(s, "fatal:");
	if (f) {
		while (f > s && f[-1] != '\n')
			f--;
		s = f;
	}
	buf_append_printable(dst, s, strcspn(s, "\n"));
}

/* Whether Postfix's default configuration directory holds a main.cf:
 * $MAIL_CONFIG, else /etc/postfix when it exists (Debian's and most
 * systems' compiled-in one: no process to start), else what `postconf -dh
 * config_directory` says. Asked first because a postconf that fails (no
 * main.cf: the package installed, never configured) takes a second:
 * Postfix's fatal errors sleep before they exit. */
static bool postfix_configured(char *prog)
{
	struct buf out = BUF_INIT, e = BUF_INIT, path = BUF_INIT;
	const char *mc = getenv("MAIL_CONFIG");
	if (mc && *mc) {
		buf_appends(&out, mc);
	} else if (access("/etc/postfix", X_OK) == 0) {
		buf_appends(&out, "/etc/postfix");
	} else {
		char *argv[] = {prog, "-dh", "config_directory", NULL};
		if (run(argv, &out, &e) != 0)
			buf_reset(&out);
	}
	buf_append(&path, buf_str(&out), strcspn(buf_str(&out), "\n"));
	buf_appends(&path, "/main.cf");
	bool ok = out.len && access(buf_str(&path), R_OK) == 0;
	buf_free(&out);
	buf_free(&e);
	buf_free(&path);
	return ok;
}

static void read_postfix(struct config *c, struct strv *warn, struct strv *err)
{
	bool must = c->mta_trusted & TRUST_POSTFIX;
	char *prog = find_program("postconf");
	struct buf out = BUF_INIT, e = BUF_INIT, msg = BUF_INIT;
	if (!prog) {
		if (must)
			strv_add(err, "[safety] mta_trusted = postfix: postconf is not installed");
		goto out;
	}
	const char *dir = c->postfix_config && *c->postfix_config ? c->postfix_config : NULL;
	if (!must && !dir && !postfix_configured(prog))
		goto out; /* auto: installed but never configured is no Postfix */
	/* -x: $names expanded ("$config_directory/mynetworks") */
	char *argv[] = {prog, "-c", (char *)dir, "-xh", "mynetworks", NULL};
	if (!dir) {
		argv[1] = "-xh";
		argv[2] = "mynetworks";
		argv[3] = NULL;
	}
	int rc = run(argv, &out, &e);
	if (rc != 0) {
		/* auto: Postfix installed but never configured (no main.cf) is
		 * no Postfix at all */
		bool unconfigured = strstr(buf_str(&e), "main.cf: No such file") != NULL;
		if (must || !unconfigured || dir) {
			buf_printf(&msg, "postfix mynetworks: `postconf%s%s -xh mynetworks` failed (%s): ",
				   dir ? " -c " : "", dir ? dir : "",
				   rc < 0 ? "did not finish" : "exit status");
			first_line(&msg, &e);
			strv_add(must || dir ? err : warn, buf_str(&msg));
		}
		goto out;
	}
	mtaconf_postfix_list(buf_str(&out), "postfix mynetworks", &c->trusted_nets, &c->trusted_src, warn);
out:
	free(prog);
	buf_free(&out);
	buf_free(&e);
	buf_free(&msg);
}

static void read_exim(struct config *c, struct strv *warn, struct strv *err)
{
	bool must = c->mta_trusted & TRUST_EXIM;
	char *prog = find_program("exim4");
	if (!prog)
		prog = find_program("exim");
	struct buf out = BUF_INIT, e = BUF_INIT, msg = BUF_INIT;
	if (!prog) {
		if (must)
			strv_add(err, "[safety] mta_trusted = exim: neither exim4 nor exim is installed");
		goto out;
	}
	const char *file = c->exim_config && *c->exim_config ? c->exim_config : NULL;
	char *argv[] = {prog, "-C", (char *)file, "-n", "-bP", "+relay_from_hosts", NULL};
	if (!file) {
		argv[1] = "-n";
		argv[2] = "-bP";
		argv[3] = "+relay_from_hosts";
		argv[4] = NULL;
	}
	int rc = run(argv, &out, &e);
	const char *v = buf_str(&out);
	/* Exim 4.96 says this on stdout and exits 1 */
	if (rc >= 0 && strncmp(v, "no address, domain, host, or local part list called", 51) == 0) {
		strv_add(
		    warn,
		    "exim relay_from_hosts: the Exim configuration defines no hostlist relay_from_hosts");
		goto out;
	}
	if (rc != 0) {
		buf_printf(&msg,
			   "exim relay_from_hosts: `%s%s%s -n -bP +relay_from_hosts` failed (%s): ", prog,
			   file ? " -C " : "", file ? file : "", rc < 0 ? "did not finish" : "exit status");
		first_line(&msg, &e);
		strv_add(must || file ? err : warn, buf_str(&msg));
		goto out;
	}
	if (out.data)
		out.data[strcspn(v, "\n")] = '\0'; /* -n prints the list on one line */
	mtaconf_exim_hostlist(v, "exim relay_from_hosts", &c->trusted_nets, &c->trusted_src, warn);
out:
	free(prog);
	buf_free(&out);
	buf_free(&e);
	buf_free(&msg);
}

int mtaconf_read(struct config *c, struct strv *warn, struct strv *err)
{
	size_t nerr = err->n;
	prefix_list_free(&c->trusted_nets);
	strv_free(&c->trusted_src);
	if (c->mta_trusted & (TRUST_POSTFIX | TRUST_AUTO))
		read_postfix(c, warn, err);
	if (c->mta_trusted & (TRUST_EXIM | TRUST_AUTO))
		read_exim(c, warn, err);
	return err->n > nerr ? -1 : 0;
}

/*
 * smtp.c - hand one message to an MTA by SMTP (RFC 5321): connect to
 * ADDR:PORT (an address, never a name), EHLO (HELO when refused), MAIL
 * FROM, one RCPT TO, DATA with dot-stuffing, QUIT. Each reply is waited for
 * at most the timeout; replies longer than 64 KiB are refused.
 *
 * The envelope recipient is the one argument the caller gives (from the
 * contact map), never taken from the message's headers, so nothing written
 * in a message can add a recipient. It must never send a line that holds
 * a bare CR or LF inside a command.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reports/internal.h"

#define REPLY_MAX 65536

struct conn {
	int fd;
	int64_t timeout_ms;
	char in[4096];
	size_t have, off;
	struct buf *err;
};

static int parse_addrport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	const char *colon = strrchr(s, ':');
	if (!colon)
		return -1;
	char host[IPADDR_STRLEN + 2];
	size_t hn = (size_t)(colon - s);
	const char *h = s;
	if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
		h++;
		hn -= 2;
	}
	if (str_copy(host, sizeof host, h, hn) < 0)
		return -1;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return -1;
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof *a4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof *a6;
		return 0;
	}
	return -1;
}

static int wait_fd(struct conn *c, short ev)
{
	struct pollfd p = {c->fd, ev, 0};
	int64_t deadline = clock_mono_us() + c->timeout_ms * 1000;
	for (;;) {
		int64_t left = (deadline - clock_mono_us()) / 1000;
		if (left <= 0) {
			buf_printf(c->err, "timed out after %lld s", (long long)(c->timeout_ms / 1000));
			return -1;
		}
		int r = poll(&p, 1, (int)MXW_MIN(left, 60000));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR) {
			buf_printf(c->err, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

static int send_all(struct conn *c, const char *p, size_t n)
{
	while (n) {
		if (wait_fd(c, POLLOUT) < 0)
			return -1;
		ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			buf_printf(c->err, "send: %s", strerror(errno));
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* One reply (all its lines); its code, or -1. text gets the last line. */
static int reply(struct conn *c, struct buf *text)
{
	struct buf line = BUF_INIT;
	size_t total = 0;
	int code = -1;
	buf_reset(text);
	for (;;) {
		if (c->off == c->have) {
			if (wait_fd(c, POLLIN) < 0)
				break;
			ssize_t k = recv(c->fd, c->in, sizeof c->in, MSG_DONTWAIT);
			if (k < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (k <= 0) {
				buf_printf(c->err, "connection closed%s%s", k < 0 ? ": " : "",
					   k < 0 ? strerror(errno) : "");
				break;
			}
			c->have = (size_t)k;
			c->off = 0;
		}
		char ch = c->in[c->off++];
		if (++total > REPLY_MAX) {
			buf_printf(c->err, "reply longer than %d bytes", REPLY_MAX);
			break;
		}
		if (ch != '\n') {
			if (ch != '\r')
				buf_appendc(&line, ch);
			continue;
		}
		const char *l = buf_str(&line);
		if (line.len < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' ||
		    l[2] > '9' || (line.len > 3 && l[3] != ' ' && l[3] != '-')) {
			buf_appends(c->err, "not an SMTP reply: ");
			buf_append_printable(c->err, l, MXW_MIN(line.len, 200));
			break;
		}
		if (line.len > 3 && l[3] == '-') {
			buf_reset(&line);
			continue;
		}
		code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
		buf_append_printable(text, l, MXW_MIN(line.len, 300));
		break;
	}
	buf_free(&line);
	return code;
}

/* Send a command line (no CR or LF inside) and read its reply: the code or -1. */
static int command(struct conn *c, const char *cmd, struct buf *text)
{
	if (strpbrk(cmd, "\r\n"))
		BUG("SMTP command with a line break");
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s\r\n", cmd);
	int rc = send_all(c, b.data, b.len);
	buf_free(&b);
	return rc < 0 ? -1 : reply(c, text);
}

/* The message with CRLF line ends and leading dots doubled, ended by ".". */
static void dot_stuff(struct buf *out, const char *msg, size_t len)
{
	bool bol = true;
	for (size_t i = 0; i < len; i++) {
		char ch = msg[i];
		if (bol && ch == '.')
			buf_appendc(out, '.');
		if (ch == '\n' && (i == 0 || msg[i - 1] != '\r'))
			buf_appendc(out, '\r');
		buf_appendc(out, ch);
		bol = ch == '\n';
	}
	if (!bol)
		buf_appends(out, "\r\n");
	buf_appends(out, ".\r\n");
}

int smtp_send(const char *addrport, const char *helo, int64_t timeout, const char *from, const char *rcpt,
	      const char *msg, size_t len, struct buf *err)
{
	if (!mail_addr_ok(from) || !mail_addr_ok(rcpt) || !hostname_ok(helo)) {
		buf_printf(err, "refused: an envelope address or the HELO name is not plain");
		return SMTP_PERM;
	}
	struct sockaddr_storage ss;
	socklen_t sl;
	if (parse_addrport(addrport, &ss, &sl) < 0) {
		buf_printf(err, "'%s' is not ADDR:PORT", addrport);
		return SMTP_PERM;
	}
	struct conn c = {.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
			 .timeout_ms = (timeout > 0 ? timeout : 30) * 1000,
			 .err = err};
	if (c.fd < 0) {
		buf_printf(err, "socket: %s", strerror(errno));
		return SMTP_TEMP;
	}
	int rc = SMTP_TEMP;
	struct buf text = BUF_INIT, cmd = BUF_INIT;
	if (connect(c.fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		buf_printf(err, "connect %s: %s", addrport, strerror(errno));
		goto out;
	}
	if (wait_fd(&c, POLLOUT) < 0)
		goto out;
	int soerr = 0;
	socklen_t el = sizeof soerr;
	getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &soerr, &el);
	if (soerr) {
		buf_printf(err, "connect %s: %s", addrport, strerror(soerr));
		goto out;
	}
	int code = reply(&c, &text);
	if (code != 220)
		goto bad;
	buf_printf(&cmd, "EHLO %s", helo);
	code = command(&c, buf_str(&cmd), &text);
	if (code >= 500 && code < 600) {
		buf_reset(&cmd);
		buf_printf(&cmd, "HELO %s", helo);
		code = command(&c, buf_str(&cmd), &text);
	}
	if (code != 250)
		goto bad;
	buf_reset(&cmd);
	buf_printf(&cmd, "MAIL FROM:<%s>", from);
	if ((code = command(&c, buf_str(&cmd), &text)) != 250)
		goto bad;
	buf_reset(&cmd);
	buf_printf(&cmd, "RCPT TO:<%s>", rcpt);
	code = command(&c, buf_str(&cmd), &text);
	if (code != 250 && code != 251)
		goto bad;
	if ((code = command(&c, "DATA", &text)) != 354)
		goto bad;
	buf_reset(&cmd);
	dot_stuff(&cmd, msg, len);
	if (send_all(&c, cmd.data, cmd.len) < 0)
		goto out;
	if ((code = reply(&c, &text)) != 250)
		goto bad;
	rc = SMTP_OK;
	command(&c, "QUIT", &text); /* the message is accepted: what QUIT says does not matter */
	goto out;
bad:
	if (code > 0) {
		buf_printf(err, "%s", buf_str(&text));
		rc = code >= 500 ? SMTP_PERM : SMTP_TEMP;
		buf_reset(&cmd);
		command(&c, "QUIT", &text);
	}
out:
	close(c.fd);
	buf_free(&text);
	buf_free(&cmd);
	return rc;
}

/*
 * testlib.c - the shared helpers of the C tests (testlib.h).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "testlib.h"

char *tl_scratch(const char *tag, bool shm)
{
	struct stat st;
	const char *base = "/tmp";
	if (shm && stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";
	char *p = NULL;
	if (asprintf(&p, "%s/mxw-%s-XXXXXX", base, tag) < 0)
		return NULL;
	if (!mkdtemp(p)) {
		free(p);
		return NULL;
	}
	return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void tl_rmtree(const char *dir)
{
	if (dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tl_scratch_free(char **dir)
{
	tl_rmtree(*dir);
	free(*dir);
	*dir = NULL;
	return 0;
}

char *tl_path(const char *dir, const char *name)
{
	char *p = NULL;
	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

char *tl_slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	size_t cap = 8192, n = 0, k;
	char *b = malloc(cap + 1);
	while (b && (k = fread(b + n, 1, cap - n, fp)) > 0) {
		n += k;
		if (n == cap) {
			char *nb = realloc(b, 2 * cap + 1);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
	}
	bool bad = ferror(fp);
	fclose(fp);
	if (!b || bad) {
		free(b);
		return NULL;
	}
	b[n] = '\0';
	if (len)
		*len = n;
	return b;
}

int tl_write(const char *path, const char *mode, const char *text)
{
	FILE *fp = fopen(path, mode);
	if (!fp)
		return -1;
	size_t n = strlen(text);
	bool ok = fwrite(text, 1, n, fp) == n;
	if (fclose(fp) != 0)
		ok = false;
	return ok ? 0 : -1;
}

size_t tl_count_dotfiles(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	size_t n = 0;
	while (dp && (e = readdir(dp)))
		n += e->d_name[0] == '.' && e->d_name[1] && strcmp(e->d_name, "..") != 0;
	if (dp)
		closedir(dp);
	return n;
}

char *tl_http_get(unsigned port, const char *path, int *status)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	char req[512];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || n < 0 || (size_t)n >= sizeof req ||
	    write(fd, req, (size_t)n) != n) {
		close(fd);
		return NULL;
	}
	size_t cap = 65536, len = 0;
	char *b = malloc(cap + 1);
	ssize_t k;
	while (b && (k = read(fd, b + len, cap - len)) > 0) {
		len += (size_t)k;
		if (len == cap) {
			char *nb = realloc(b, 2 * cap + 1);
			if (!nb)
				break;
			b = nb;
			cap *= 2;
		}
	}
	close(fd);
	if (!b)
		return NULL;
	b[len] = '\0';
	char *body = strstr(b, "\r\n\r\n");
	if (strncmp(b, "HTTP/1.", 7) != 0 || !body) {
		free(b);
		return NULL;
	}
	*status = atoi(b + 9);
	memmove(b, body + 4, len - (size_t)(body + 4 - b) + 1);
	return b;
}

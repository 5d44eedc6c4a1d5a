/*
 * clock.c - the settable wall clock, calendar arithmetic without time zones,
 * RFC 3339 parsing and formatting, and durations ("90s", "2h", "7d").
 * Nothing here consults the process's TZ: local-time conversion of syslog
 * stamps belongs to parsers/.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"

static bool clock_init_done;
static int64_t clock_base_us = -1; /* MXWARDEN_NOW, -1 = real clock */
static int64_t clock_base_mono;
static bool clock_frozen;

int64_t clock_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void clock_reset(void)
{
	clock_init_done = false;
	clock_base_us = -1;
}

static void clock_init(void)
{
	clock_init_done = true;
	const char *s = getenv("MXWARDEN_NOW");
	if (!s || !*s)
		return;
	int64_t us;
	if (s[0] == '@') {
		char *end;
		errno = 0;
		long long v = strtoll(s + 1, &end, 10);
		if (errno || *end || end == s + 1)
			fatal("MXWARDEN_NOW=%s: want RFC 3339 or @epoch-seconds", s);
		us = (int64_t)v * 1000000;
	} else if (time_parse_rfc3339(s, strlen(s), &us) != (int)strlen(s)) {
		fatal("MXWARDEN_NOW=%s: want RFC 3339 or @epoch-seconds", s);
	}
	clock_base_us = us;
	clock_base_mono = clock_mono_us();
	const char *f = getenv("MXWARDEN_NOW_FROZEN");
	clock_frozen = f && *f && strcmp(f, "0") != 0;
}

int64_t clock_now_us(void)
{
	if (!clock_init_done)
		clock_init();
	if (clock_base_us >= 0)
		return clock_base_us + (clock_frozen ? 0 : clock_mono_us() - clock_base_mono);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Howard Hinnant's days_from_civil: exact for any proleptic Gregorian date. */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

static int digits(const char *s, size_t n, size_t at, size_t count, unsigned *out)
{
	if (at + count > n)
		return -1;
	unsigned v = 0;
	for (size_t i = 0; i < count; i++) {
		char c = s[at + i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (unsigned)(c - '0');
	}
	*out = v;
	return 0;
}

static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

int time_parse_rfc3339(const char *s, size_t n, int64_t *us)
{
	unsigned y, mo, d, h, mi, se;
	if (digits(s, n, 0, 4, &y) || n < 19 || s[4] != '-' || digits(s, n, 5, 2, &mo) || s[7] != '-' ||
	    digits(s, n, 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s, n, 11, 2, &h) || s[13] != ':' || digits(s, n, 14, 2, &mi) || s[16] != ':' ||
	    digits(s, n, 17, 2, &se))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return -1;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return -1;
	size_t i = 19;
	int64_t frac = 0;
	if (i < n && (s[i] == '.' || s[i] == ',')) {
		i++;
		size_t start = i;
		int64_t scale = 100000;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			frac += (s[i] - '0') * scale;
			scale /= 10;
			i++;
		}
		if (i == start)
			return -1;
	}
	int64_t off = 0;
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < n && (s[i] == '+' || s[i] == '-')) {
		unsigned oh, om;
		int sign = s[i] == '-' ? -1 : 1;
		if (digits(s, n, i + 1, 2, &oh))
			return -1;
		size_t j = i + 3;
		if (j < n && s[j] == ':')
			j++;
		if (digits(s, n, j, 2, &om) || oh > 23 || om > 59)
			return -1;
		off = sign * (int64_t)(oh * 3600 + om * 60);
		i = j + 2;
	}
	if (se == 60)
		se = 59; /* a leap second is kept inside its minute */
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
	*us = secs * 1000000 + frac;
	return (int)i;
}

size_t time_format_rfc3339(int64_t us, bool frac, char *out)
{
	int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
	int64_t rem = us - secs * 1000000;
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t sod = secs - days * 86400;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	int n;
	if (frac)
		n = snprintf(out, TIME_STRLEN, "%04lld-%02u-%02uT%02d:%02d:%02d.%06lldZ", (long long)y, m, d,
			     (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (long long)rem);
	else
		n = snprintf(out, TIME_STRLEN, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d,
			     (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
	if (n < 0 || n >= TIME_STRLEN)
		BUG("time out of range: %lld", (long long)us);
	return (size_t)n;
}

int duration_parse(const char *s, int64_t *secs)
{
	if (!s || !*s)
		return -1;
	int64_t total = 0;
	const char *p = s;
	while (*p) {
		if (*p < '0' || *p > '9')
			return -1;
		int64_t v = 0;
		while (*p >= '0' && *p <= '9') {
			if (v > (INT64_MAX - 9) / 10)
				return -1;
			v = v * 10 + (*p++ - '0');
		}
		int64_t mult;
		switch (*p) {
		case '\0':
			if (p - s > 0 && total == 0 && (size_t)(p - s) == strlen(s)) {
				*secs = v; /* a plain number of seconds */
				return 0;
			}
			return -1; /* "1h30" is ambiguous */
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		case 'w': mult = 7 * 86400; break;
		default: return -1;
		}
		p++;
		if (v > (INT64_MAX - total) / mult)
			return -1;
		total += v * mult;
	}
	*secs = total;
	return 0;
}

void duration_format(int64_t secs, char *out, size_t outsz)
{
	static const struct {
		int64_t n;
		char u;
	} units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	size_t len = 0;
	if (secs <= 0) {
		snprintf(out, outsz, "0s");
		return;
	}
	out[0] = '\0';
	for (size_t i = 0; i < MXW_ARRAY_LEN(units) && secs > 0; i++) {
		if (secs >= units[i].n) {
			int k = snprintf(out + len, outsz - len, "%lld%c", (long long)(secs / units[i].n),
					 units[i].u);
			if (k < 0 || (size_t)k >= outsz - len)
				return; /* cut: the caller's buffer is the documented 32 bytes */
			len += (size_t)k;
			secs %= units[i].n;
		}
	}
}

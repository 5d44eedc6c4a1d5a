/*
 * utf8.c - the one place that decides what is valid UTF-8 and how bytes
 * that are not are shown.
 *
 * Valid is RFC 3629 (jansson's rule too): no overlong forms, no surrogates,
 * nothing above U+10FFFF. NUL and the other control characters are valid
 * UTF-8; escaping them is each sink's business (JSON \u00XX, HTML, a
 * terminal mask). A byte that does not start or belong to a valid sequence
 * is shown as one U+FFFD, in every sink: the event JSON, the API and the
 * dashboard, the evidence of a decision, reports and the JSON blocklist.
 * Sinks restricted to ASCII (the other blocklist formats' comments) show
 * any non-ASCII character, U+FFFD included, as '?'.
 *
 * It must never decide anything about a log line: the raw line stays bytes
 * (it is stored byte-exact) and parsing does not depend on its encoding.
 */
#include <string.h>

#include "base.h"

size_t utf8_seq(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t cp, least;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
		least = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
		least = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
		least = 0x10000;
	} else {
		return 0; /* a continuation byte, 0xc0, 0xc1 or above 0xf4 */
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if (cp < least || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

#define HIGHS 0x8080808080808080ULL

size_t utf8_valid_prefix(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		/* ASCII, 8 bytes at a time */
		uint64_t w;
		while (n - i >= 8 && (memcpy(&w, s + i, 8), (w & HIGHS) == 0))
			i += 8;
		while (i < n && (unsigned char)s[i] < 0x80)
			i++;
		if (i == n)
			break;
		size_t k = utf8_seq(s + i, n - i);
		if (k == 0)
			return i;
		i += k;
	}
	return n;
}

void utf8_append_clean(struct buf *b, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t ok = utf8_valid_prefix(s + i, n - i);
		buf_append(b, s + i, ok);
		i += ok;
		if (i < n) {
			buf_append(b, UTF8_REPLACEMENT, 3);
			i++;
		}
	}
}

/* Characters a one-line text sink must not pass through as they are: C0
 * and C1 controls, DEL, the line and paragraph separators, and the
 * formatting characters that reorder what a terminal shows (bidi
 * embeddings, overrides and isolates, the marks). */
static bool hidden_char(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

static uint32_t code_point(const unsigned char *p, size_t k)
{
	static const unsigned char first_mask[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
	uint32_t cp = p[0] & first_mask[k];
	for (size_t i = 1; i < k; i++)
		cp = (cp << 6) | (p[i] & 0x3fu);
	return cp;
}

void utf8_append_text(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f) {
			if (c == '\\')
				buf_appendc(b, '\\');
			buf_appendc(b, (char)c);
			i++;
			continue;
		}
		size_t k = utf8_seq(s + i, n - i);
		if (k == 0) {
			buf_append(b, UTF8_REPLACEMENT, 3);
			i++;
		} else if (hidden_char(code_point((const unsigned char *)s + i, k))) {
			for (size_t j = 0; j < k; j++) {
				unsigned char h = (unsigned char)s[i + j];
				char e[4] = {'\\', 'x', hex[h >> 4], hex[h & 15]};
				buf_append(b, e, 4);
			}
			i += k;
		} else {
			buf_append(b, s + i, k);
			i += k;
		}
	}
}

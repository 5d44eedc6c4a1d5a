/*
 * emit_plain.c - one canonical prefix per line ("192.0.2.0/24",
 * "2001:db8::/64", "198.51.100.7/32"), nothing else: no comment, no text,
 * for any tool that reads a list of networks.
 *
 * It must never write anything but prefixes and newlines.
 */
#include "emitters/emit_int.h"

static void plain_render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n,
			 struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		char p[PREFIX_STRLEN];
		size_t len = prefix_format(&v[i]->prefix, p);
		buf_append(out, p, len);
		buf_appendc(out, '\n');
	}
}

static int plain_validate(const char *text, size_t len, struct buf *err)
{
	return emit_validate_lines(text, len, err, NULL, "^[0-9a-f.:]+/[0-9]{1,3}$", 0, NULL);
}

const struct emit_format emit_format_plain = {
    .name = "plain",
    .families = FAMILY_V4 | FAMILY_V6,
    .render = plain_render,
    .validate = plain_validate,
};

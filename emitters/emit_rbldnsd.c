/*
 * emit_rbldnsd.c - rbldnsd zone data: ip4trie (rbldnsd, IPv4) and ip6trie
 * (rbldnsd6, IPv6), any prefix length. Each entry carries its own A record
 * (127.0.0.2 for reject and drop, 127.0.0.3 for defer, 127.0.0.4 for
 * observe) and a TXT record with the rule, the sanitized reason and the
 * lookup URL, whose "$ip" is written as "$" so that rbldnsd puts the
 * queried address there.
 *
 * It must never write a '$' of its own (the reason whitelist excludes it),
 * a line that starts with anything but a prefix, ':' (the default) or '#',
 * nor an A record in 127.255.255.0/24 (reserved for DNSBL error codes).
 */
#include "emitters/emit_int.h"

#define TEXT_CLASS "[]A-Za-z0-9 .,:;_@/+=()<>%!?*&~$[-]"

static const char *a_record(enum response r)
{
	switch (r) {
	case RESP_OBSERVE: return "127.0.0.4";
	case RESP_DEFER: return "127.0.0.3";
	default: return "127.0.0.2";
	}
}

static void render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n, struct buf *out,
		   const char *name)
{
	emit_header(out, "#", name, ctx, n);
	buf_appends(out, ":127.0.0.2:Listed by mxwarden");
	if (ctx->lookup_url && ctx->lookup_url[0]) {
		buf_appends(out, " see ");
		struct prefix any = {0};
		emit_url(out, ctx->lookup_url, &any, true);
	}
	buf_appendc(out, '\n');
	for (size_t i = 0; i < n; i++) {
		char p[PREFIX_STRLEN];
		prefix_format(&v[i]->prefix, p);
		buf_printf(out, "%s :%s:", p, a_record(v[i]->response));
		emit_text(out, ctx, v[i], 200, true);
		buf_appendc(out, '\n');
	}
}

static void rbldnsd_render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n,
			   struct buf *out)
{
	render(ctx, v, n, out, "rbldnsd");
}

static void rbldnsd6_render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n,
			    struct buf *out)
{
	render(ctx, v, n, out, "rbldnsd6");
}

static int rbldnsd_validate(const char *text, size_t len, struct buf *err)
{
	static const char entry[] = "^[0-9a-f.:/]+ :127\\.0\\.0\\.[234]:" TEXT_CLASS "*$";
	static const char other[] = "^:127\\.0\\.0\\.2:" TEXT_CLASS "*$";
	return emit_validate_lines(text, len, err, "#", entry, 0, other);
}

const struct emit_format emit_format_rbldnsd = {
    .name = "rbldnsd",
    .families = FAMILY_V4,
    .render = rbldnsd_render,
    .validate = rbldnsd_validate,
};

const struct emit_format emit_format_rbldnsd6 = {
    .name = "rbldnsd6",
    .families = FAMILY_V6,
    .render = rbldnsd6_render,
    .validate = rbldnsd_validate,
};

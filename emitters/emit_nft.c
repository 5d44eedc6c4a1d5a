/*
 * emit_nft.c - an nftables file (`nft -f PATH`): table inet SET with
 * interval sets v4 and v6 whose elements carry timeouts and comments, and
 * a chain on the input hook dropping their SMTP traffic (tcp ports 25, 465,
 * 587). The table is deleted and recreated in the same transaction, so a
 * load is atomic and repeatable.
 *
 * It must never write overlapping intervals (nft refuses the file): the
 * filter drops prefixes inside another one (no_overlap). Comments are at
 * most 128 bytes (nft's limit).
 */
#include "emitters/emit_int.h"

#define TEXT_CLASS "[]A-Za-z0-9 .,:;_@/+=()<>%!?*&~[-]"

static void set_block(struct buf *out, const struct emit_ctx *ctx, int family,
		      const struct decision *const *v, size_t n)
{
	int suffix = family == IPADDR_V4 ? 4 : 6;
	buf_printf(out, "\tset v%d {\n\t\ttype ipv%d_addr\n\t\tflags interval, timeout\n", suffix, suffix);
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		if (v[i]->prefix.addr.family != family)
			continue;
		if (!any)
			buf_appends(out, "\t\telements = {\n");
		any = true;
		char p[PREFIX_STRLEN];
		prefix_format(&v[i]->prefix, p);
		buf_printf(out, "\t\t\t%s timeout %llds comment \"", p, (long long)emit_timeout(ctx, v[i]));
		emit_text(out, ctx, v[i], 120, false);
		buf_appends(out, "\",\n");
	}
	if (any)
		buf_appends(out, "\t\t}\n");
	buf_appends(out, "\t}\n");
}

static void nft_render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n, struct buf *out)
{
	emit_header(out, "#", "nft", ctx, n);
	buf_printf(out, "table inet %s\ndelete table inet %s\ntable inet %s {\n", ctx->set_name,
		   ctx->set_name, ctx->set_name);
	set_block(out, ctx, IPADDR_V4, v, n);
	set_block(out, ctx, IPADDR_V6, v, n);
	buf_appends(out, "\tchain input {\n"
			 "\t\ttype filter hook input priority filter - 10; policy accept;\n"
			 "\t\tip saddr @v4 tcp dport { 25, 465, 587 } drop\n"
			 "\t\tip6 saddr @v6 tcp dport { 25, 465, 587 } drop\n"
			 "\t}\n}\n");
}

static int nft_validate(const char *text, size_t len, struct buf *err)
{
	static const char entry[] = "^\t\t\t[0-9a-f.:/]+ timeout [0-9]{1,7}s comment \"" TEXT_CLASS "*\",$";
	static const char other[] = "^(table inet [A-Za-z0-9_]+( \\{)?|delete table inet [A-Za-z0-9_]+"
				    "|\tset v[46] \\{|\t\ttype ipv[46]_addr|\t\tflags interval, timeout"
				    "|\t\telements = \\{|\t\t\\}|\t\\}|\\}"
				    "|\tchain input \\{"
				    "|\t\ttype filter hook input priority filter - 10; policy accept;"
				    "|\t\tip6? saddr @v[46] tcp dport \\{ 25, 465, 587 \\} drop)$";
	return emit_validate_lines(text, len, err, "#", entry, 0, other);
}

const struct emit_format emit_format_nft = {
    .name = "nft",
    .families = FAMILY_V4 | FAMILY_V6,
    .relative_time = true,
    .no_overlap = true,
    .render = nft_render,
    .validate = nft_validate,
};

/*
 * emit_iptables.c - `iptables-restore --noflush` and `ip6tables-restore
 * --noflush` files for one dedicated chain (SET, default "mxwarden") in the
 * filter table: one rule per prefix on the SMTP ports (25, 465, 587),
 * DROP for drop, REJECT with a TCP reset otherwise, each with a comment.
 * Declaring the chain flushes it, so a load replaces the whole list in one
 * commit. Hook it once: iptables -I INPUT -p tcp -j SET.
 *
 * It must never touch another chain or table.
 */
#include "emitters/emit_int.h"

#define TEXT_CLASS "[]A-Za-z0-9 .,:;_@/+=()<>%!?*&~[-]"

static void render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n, struct buf *out,
		   const char *name)
{
	emit_header(out, "#", name, ctx, n);
	buf_printf(out, "# load: %s-restore --noflush FILE; hook once: %s -I INPUT -p tcp -j %s\n", name,
		   name, ctx->set_name);
	buf_printf(out, "*filter\n:%s - [0:0]\n", ctx->set_name);
	for (size_t i = 0; i < n; i++) {
		char p[PREFIX_STRLEN];
		prefix_format(&v[i]->prefix, p);
		buf_printf(out, "-A %s -s %s -p tcp -m multiport --dports 25,465,587 -m comment --comment \"",
			   ctx->set_name, p);
		emit_text(out, ctx, v[i], 240, false);
		buf_appends(out, v[i]->response == RESP_DROP ? "\" -j DROP\n"
							     : "\" -j REJECT --reject-with tcp-reset\n");
	}
	buf_printf(out, "-A %s -j RETURN\nCOMMIT\n", ctx->set_name);
}

static void iptables_render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n,
			    struct buf *out)
{
	render(ctx, v, n, out, "iptables");
}

static void ip6tables_render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n,
			     struct buf *out)
{
	render(ctx, v, n, out, "ip6tables");
}

static int iptables_validate(const char *text, size_t len, struct buf *err)
{
	static const char entry[] =
	    "^-A [A-Za-z0-9_]+ -s [0-9a-f.:/]+ -p tcp -m multiport --dports 25,465,587 "
	    "-m comment --comment \"" TEXT_CLASS "*\" -j (DROP|REJECT --reject-with tcp-reset)$";
	static const char other[] =
	    "^(\\*filter|COMMIT|:[A-Za-z0-9_]+ - \\[0:0\\]|-A [A-Za-z0-9_]+ -j RETURN)$";
	return emit_validate_lines(text, len, err, "#", entry, 3, other);
}

const struct emit_format emit_format_iptables = {
    .name = "iptables",
    .families = FAMILY_V4,
    .render = iptables_render,
    .validate = iptables_validate,
};

const struct emit_format emit_format_ip6tables = {
    .name = "ip6tables",
    .families = FAMILY_V6,
    .render = ip6tables_render,
    .validate = iptables_validate,
};

/*
 * emit_ipset.c - an `ipset restore` file: hash:net sets SET4 (inet) and
 * SET6 (inet6) with per-entry timeouts and comments, replaced atomically by
 * filling SET4-new and swapping it in. Load with `ipset restore -file PATH`
 * (repeatable: the main set is created with -exist, a leftover -new set
 * is destroyed first; the sets' definition never changes); match with
 * `-m set --match-set SET4 src`.
 *
 * It must never write a timeout above EMIT_MAX_TIMEOUT (ipset refuses it):
 * emitters_update rewrites the file before such a timeout runs out.
 */
#include "emitters/emit_int.h"

#define TEXT_CLASS "[]A-Za-z0-9 .,:;_@/+=()<>%!?*&~[-]"

/* maxelem is part of a set's definition, and "create -exist" fails when
 * the definition differs: keep it constant (a power of two at least 2^20),
 * so that a changed max_entries does not break the next load. */
static size_t maxelem_for(size_t max_entries)
{
	size_t m = (size_t)1 << 20;
	while (m < max_entries)
		m <<= 1;
	return m;
}

static void set_block(struct buf *out, const struct emit_ctx *ctx, int family,
		      const struct decision *const *v, size_t n)
{
	const char *fam = family == IPADDR_V4 ? "inet" : "inet6";
	int suffix = family == IPADDR_V4 ? 4 : 6;
	size_t maxelem = maxelem_for(ctx->max_entries);
	/* a -new set left by an interrupted load may have another definition */
	buf_printf(out,
		   "create %s%d hash:net family %s hashsize 1024 maxelem %zu timeout 0 comment -exist\n"
		   "destroy %s%d-new -exist\n"
		   "create %s%d-new hash:net family %s hashsize 1024 maxelem %zu timeout 0 comment\n",
		   ctx->set_name, suffix, fam, maxelem, ctx->set_name, suffix, ctx->set_name, suffix, fam,
		   maxelem);
	for (size_t i = 0; i < n; i++) {
		if (v[i]->prefix.addr.family != family)
			continue;
		char p[PREFIX_STRLEN];
		prefix_format(&v[i]->prefix, p);
		buf_printf(out, "add %s%d-new %s timeout %lld comment \"", ctx->set_name, suffix, p,
			   (long long)emit_timeout(ctx, v[i]));
		emit_text(out, ctx, v[i], 250, false);
		buf_appends(out, "\"\n");
	}
	buf_printf(out, "swap %s%d-new %s%d\ndestroy %s%d-new\n", ctx->set_name, suffix, ctx->set_name,
		   suffix, ctx->set_name, suffix);
}

static void ipset_render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n,
			 struct buf *out)
{
	emit_header(out, "#", "ipset", ctx, n);
	buf_printf(out,
		   "# load: ipset restore -file FILE; match: -m set --match-set %s4 src (%s6 for IPv6)\n",
		   ctx->set_name, ctx->set_name);
	set_block(out, ctx, IPADDR_V4, v, n);
	set_block(out, ctx, IPADDR_V6, v, n);
}

static int ipset_validate(const char *text, size_t len, struct buf *err)
{
	static const char entry[] =
	    "^add [A-Za-z0-9_]+[46]-new [0-9a-f.:/]+ timeout [0-9]{1,7} comment \"" TEXT_CLASS "*\"$";
	static const char other[] = "^(create [A-Za-z0-9_]+[46](-new)? hash:net family inet6? hashsize 1024 "
				    "maxelem [0-9]+ timeout 0 comment( -exist)?"
				    "|destroy [A-Za-z0-9_]+[46]-new -exist"
				    "|swap [A-Za-z0-9_]+[46]-new [A-Za-z0-9_]+[46]"
				    "|destroy [A-Za-z0-9_]+[46]-new)$";
	return emit_validate_lines(text, len, err, "#", entry, 2, other);
}

const struct emit_format emit_format_ipset = {
    .name = "ipset",
    .families = FAMILY_V4 | FAMILY_V6,
    .relative_time = true,
    .render = ipset_render,
    .validate = ipset_validate,
};

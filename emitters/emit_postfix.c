/*
 * emit_postfix.c - Postfix cidr: tables.
 *   postfix:    for check_client_access cidr:PATH; the action is the
 *               decision's graded response: "450 4.7.1 TEXT" (defer),
 *               "554 5.7.1 TEXT" (reject, drop), "WARN TEXT" (observe), where
 *               TEXT is the rule, the sanitized reason and the lookup URL.
 *   postscreen: for postscreen_access_list cidr:PATH; only "reject"
 *               (defer and stronger) and "dunno" (observe).
 * Postfix takes the first matching line, so longer prefixes come first.
 *
 * It must never write an action other than these, nor a byte that could
 * end the line early.
 */
#include "emitters/emit_int.h"

#define TEXT_CLASS "[]A-Za-z0-9 .,:;_@/+=()<>%!?*&~[-]"

static void postfix_render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n,
			   struct buf *out)
{
	emit_header(out, "#", "postfix", ctx, n);
	buf_appends(out, "# use: smtpd_client_restrictions = check_client_access cidr:FILE\n");
	for (size_t i = 0; i < n; i++) {
		char p[PREFIX_STRLEN];
		prefix_format(&v[i]->prefix, p);
		const char *act = v[i]->response == RESP_OBSERVE ? "WARN"
				  : v[i]->response == RESP_DEFER ? "450 4.7.1"
								 : "554 5.7.1";
		buf_printf(out, "%s\t%s ", p, act);
		emit_text(out, ctx, v[i], 400, false);
		buf_appendc(out, '\n');
	}
}

static int postfix_validate(const char *text, size_t len, struct buf *err)
{
	static const char entry[] = "^[0-9a-f.:/]+\t(450 4\\.7\\.1|554 5\\.7\\.1|WARN) " TEXT_CLASS "+$";
	return emit_validate_lines(text, len, err, "#", entry, 0, NULL);
}

static void postscreen_render(const struct emit_ctx *ctx, const struct decision *const *v, size_t n,
			      struct buf *out)
{
	emit_header(out, "#", "postscreen", ctx, n);
	buf_appends(out, "# use: postscreen_access_list = permit_mynetworks, cidr:FILE\n");
	for (size_t i = 0; i < n; i++) {
		char p[PREFIX_STRLEN];
		prefix_format(&v[i]->prefix, p);
		buf_printf(out, "%s\t%s\n", p, v[i]->response == RESP_OBSERVE ? "dunno" : "reject");
	}
}

static int postscreen_validate(const char *text, size_t len, struct buf *err)
{
	return emit_validate_lines(text, len, err, "#", "^[0-9a-f.:/]+\t(permit|reject|dunno)$", 0, NULL);
}

const struct emit_format emit_format_postfix = {
    .name = "postfix",
    .families = FAMILY_V4 | FAMILY_V6,
    .longest_first = true,
    .render = postfix_render,
    .validate = postfix_validate,
};

const struct emit_format emit_format_postscreen = {
    .name = "postscreen",
    .families = FAMILY_V4 | FAMILY_V6,
    .longest_first = true,
    .render = postscreen_render,
    .validate = postscreen_validate,
};

/*
 * emit_fixture.c - writes the fixture decisions (fixture.h) in every format
 * into DIR/FORMAT, at FIX_NOW or at the time given as a second argument
 * (epoch seconds; the system tests pass the real time so that timeouts are
 * live). With a third argument "hostile", the hostile reasons and the lines
 * of $MXW_SHARED/adversarial/lines.jsonl are added as reasons of more
 * decisions (198.18.0.0/15). Used by the system tests and to review the
 * golden files.
 */
#include <stdio.h>
#include <stdlib.h>

#include "emitters/emitters.h"
#include "fixture.h"

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: emit_fixture DIR [NOW [hostile]]\n");
		return 2;
	}
	int64_t now = argc >= 3 ? strtoll(argv[2], NULL, 10) : FIX_NOW;
	size_t n = FIX_N;
	struct decision *d = xcalloc(FIX_N, sizeof *d);
	fix_make(d);
	for (size_t i = 0; i < FIX_N; i++) {
		d[i].since += now - FIX_NOW;
		d[i].until += now - FIX_NOW;
	}
	if (argc == 4) {
		struct buf path = BUF_INIT;
		const char *shared = getenv("MXW_SHARED");
		buf_printf(&path, "%s/adversarial/lines.jsonl", shared ? shared : "../shared");
		size_t k = fix_hostile(&d, &n, buf_str(&path), now);
		fprintf(stderr, "emit_fixture: %zu hostile reasons\n", k);
		buf_free(&path);
	}
	struct config c;
	fix_config(&c);
	size_t nf;
	const struct emit_format *const *f = emit_formats(&nf);
	int rc = 0;
	for (size_t i = 0; i < nf; i++) {
		struct buf out = BUF_INIT, err = BUF_INIT, path = BUF_INIT;
		if (emitters_render(f[i]->name, d, n, &c, NULL, now, &out, &err) < 0) {
			fprintf(stderr, "%s: %s\n", f[i]->name, buf_str(&err));
			rc = 1;
		}
		buf_printf(&path, "%s/%s", argv[1], f[i]->name);
		if (emit_write_atomic(buf_str(&path), out.data ? out.data : "", out.len, NULL) < 0)
			rc = 1;
		buf_free(&out);
		buf_free(&err);
		buf_free(&path);
	}
	config_free(&c);
	free(d);
	return rc;
}

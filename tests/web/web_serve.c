/*
 * web_serve.c - a test helper: serve the web module alone on a database
 * (no collector, no aggregator thread), so API tests can run before and
 * beside `mxwarden run`. Usage: web-serve -c CONFIG. Prints "port N" once
 * listening and serves until SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "web/web.h"

int main(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "-c") != 0) {
		fprintf(stderr, "usage: web-serve -c CONFIG\n");
		return 2;
	}
	struct config conf;
	struct errlist errs = {0};
	config_defaults(&conf);
	config_load(&conf, argv[2], &errs);
	config_validate(&conf, &errs);
	if (errs.msgs.n) {
		for (size_t i = 0; i < errs.msgs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs.v[i]);
		errlist_free(&errs);
		config_free(&conf);
		return 1;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* before web_start: its threads inherit the mask */
	struct buf err = BUF_INIT;
	struct web *w = web_start(&conf, conf.db_path, &err);
	if (!w) {
		fprintf(stderr, "web-serve: %s\n", buf_str(&err));
		buf_free(&err);
		config_free(&conf);
		return 1;
	}
	printf("port %u\n", web_port(w));
	fflush(stdout);
	int sig;
	sigwait(&set, &sig);
	web_stop(w);
	config_free(&conf);
	return 0;
}

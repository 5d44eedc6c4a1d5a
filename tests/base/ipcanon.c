/* ipcanon.c - test tool: reads one candidate address per line on stdin and
 * prints its canonical form, or "ERR" when ipaddr_parse() refuses it. Used by
 * test_ipaddr_diff.py to compare our parser with Python's ipaddress. */
#include <stdio.h>
#include <string.h>

#include "base/base.h"

int main(void)
{
	char line[256];
	while (fgets(line, sizeof line, stdin)) {
		size_t n = strcspn(line, "\n");
		struct ipaddr ip;
		char out[IPADDR_STRLEN];
		if (ipaddr_parse(&ip, line, n) < 0) {
			puts("ERR");
			continue;
		}
		ipaddr_format(&ip, out);
		puts(out);
	}
	return 0;
}

/*
 * tz.h - time zones for the parsers (internal to parsers/): a zone read
 * once into a sorted table of transitions, then local -> UTC lookups that
 * never touch the environment or the C library's time-zone state.
 *
 * Contract of tz_local_to_utc():
 *  - a local time that exists once maps to its one UTC instant;
 *  - a skipped local time (spring forward, 02:30 on a night 02:00 -> 03:00)
 *    is taken with the offset before the gap (02:30 CET = 03:30 CEST);
 *  - a repeated local time (fall back, 02:00-02:59 twice) maps to its first
 *    occurrence, unless the previous line of the stream (prev_utc) is
 *    already past the fall-back instant, or more than TZ_FOLD_SLACK after
 *    the first occurrence: then to the second, so a log that runs through
 *    the repeated hour stays in order.
 */
#ifndef MXWARDEN_PARSERS_TZ_H
#define MXWARDEN_PARSERS_TZ_H

#include "base/base.h"

#define TZ_FOLD_SLACK 600 /* seconds a line may be logged out of order */

struct tz {
	int64_t *at;  /* UTC seconds of each transition, strictly increasing */
	int32_t *off; /* the offset (seconds east) from at[i] on */
	size_t n, cap;
	int32_t off_before; /* the offset before at[0] (or always, when n == 0) */
	int64_t cache_key;  /* local hour cached (INT64_MIN = none) */
	bool cache_simple;  /* that hour has one offset throughout */
	int32_t cache_off;
};

/*
 * Load the zone name: a name under $TZDIR or /usr/share/zoneinfo
 * ("Europe/Berlin", "UTC") or a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3").
 * NULL = the system's zone: $TZ as the C library reads it, else
 * /etc/localtime, else UTC. Returns NULL with a message in err only for a
 * configured name that is neither. Call before other threads start.
 */
struct tz *tz_load(const char *name, char *err, size_t errlen);
void tz_free(struct tz *z); /* NULL is a no-op */

/* The UTC offset (seconds east) in effect at the UTC instant utc. */
int32_t tz_offset_utc(const struct tz *z, int64_t utc);

/*
 * UTC seconds of local (seconds since the epoch as if local time were UTC);
 * prev_utc is the previous line's UTC seconds (INT64_MIN = none). Cached per
 * local hour; only the hours around a transition take the full lookup.
 */
int64_t tz_local_to_utc_slow(struct tz *z, int64_t local, int64_t prev_utc);
static inline int64_t tz_local_to_utc(struct tz *z, int64_t local, int64_t prev_utc)
{
	int64_t key = local >= 0 ? local / 3600 : -((-local + 3599) / 3600);
	if (key == z->cache_key && z->cache_simple)
		return local - z->cache_off;
	return tz_local_to_utc_slow(z, local, prev_utc);
}

#endif

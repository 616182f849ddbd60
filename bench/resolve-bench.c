/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The resolve step alone, as the daemon does it per event: one pool built once, then
 * resolver_solve(NEED_MODALIAS) repeatedly.
 *
 *   resolve-bench ROOT KVER REPO_FILE N MODALIAS...
 *
 * REPO_FILE: a .solv file or an rpm-md primary.xml(.gz). Every modalias is solved N times
 * (round robin); prints the time to build the pool, and the median, mean, min and max of one
 * solve in microseconds, and what the first solve of each modalias installs. */
#include <time.h>

#include "macros.h"
#include "resolve.h"
#include "strv.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char *argv[])
{
	_cleanup_resolver_free_ Resolver *r = NULL;
	_cleanup_free_ uint64_t *t = NULL;
	uint64_t t0, sum = 0;
	unsigned n;
	int k, n_alias;

	if (argc < 6) {
		fprintf(stderr, "usage: %s ROOT KVER REPO_FILE N MODALIAS...\n", argv[0]);
		return 2;
	}
	n = (unsigned)strtoul(argv[4], NULL, 10);
	n_alias = argc - 5;
	if (n == 0)
		n = 1;

	{
		uint64_t ta, tb, tc;

		t0 = now_ns();
		k = resolver_new_bare(argv[1], argv[2], &r);
		ta = now_ns();
		if (k >= 0)
			k = resolver_add_repo_file(r, "bench", argv[3],
						   "file:///nonexistent");
		tb = now_ns();
		if (k >= 0)
			k = resolver_prepare(r);
		tc = now_ns();
		if (k < 0) {
			fprintf(stderr, "Failed to build the pool from %s: %s\n", argv[3],
				strerror(-k));
			return 1;
		}
		printf("pool: %.1f ms (system repository %.1f ms, repository %.1f ms, "
		       "whatprovides and alias index %.1f ms)\n",
		       (double)(tc - t0) / 1e6, (double)(ta - t0) / 1e6,
		       (double)(tb - ta) / 1e6, (double)(tc - tb) / 1e6);
	}

	for (int i = 0; i < n_alias; i++) {
		ResolveResult res = {};
		char *needs[] = { argv[5 + i], NULL };

		k = resolver_solve(r, NEED_MODALIAS, needs, INSTALL_REASON_HOTPLUG,
				   needs[0], &res);
		printf("%s: %s", needs[0], k < 0 ? strerror(-k) : "installs");
		for (size_t j = 0; j < res.n_install; j++)
			printf(" %s", res.install[j].name);
		STRV_FOREACH(p, res.problems)
			printf(" [%s]", *p);
		printf("\n");
		resolve_result_done(&res);
	}

	t = calloc(n, sizeof(uint64_t));
	if (!t)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		ResolveResult res = {};
		char *needs[] = { argv[5 + i % (unsigned)n_alias], NULL };

		t0 = now_ns();
		k = resolver_solve(r, NEED_MODALIAS, needs, INSTALL_REASON_HOTPLUG,
				   needs[0], &res);
		t[i] = now_ns() - t0;
		sum += t[i];
		resolve_result_done(&res);
	}
	qsort(t, n, sizeof(uint64_t), cmp_u64);
	printf("solve: median %.1f us, mean %.1f us, min %.1f us, max %.1f us over %u runs\n",
	       (double)t[n / 2] / 1e3, (double)sum / n / 1e3, (double)t[0] / 1e3,
	       (double)t[n - 1] / 1e3, n);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "macros.h"

void *greedy_realloc(void **p, size_t *allocated, size_t need, size_t sz)
{
	size_t a;
	void *q;

	if (need <= *allocated)
		return *p;
	a = need < 8 ? 8 : need * 2;
	if (MALLOC_ELEMENTSOF(a, sz))
		return NULL;
	q = realloc(*p, a * sz);
	if (!q)
		return NULL;
	*p = q;
	*allocated = a;
	return q;
}

const char *errno_name_full(int e)
{
	static __thread char buf[64];
	const char *n;

	if (e < 0)
		e = -e;
	n = strerrorname_np(e);
	if (n)
		return n;
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "strv.h"

char **strv_free(char **l)
{
	if (!l)
		return NULL;
	for (char **i = l; *i; i++)
		free(*i);
	free(l);
	return NULL;
}

size_t strv_length(char *const *l)
{
	size_t n = 0;

	if (!l)
		return 0;
	while (l[n])
		n++;
	return n;
}

int strv_consume(char ***l, char *value)
{
	size_t n;
	char **c;

	if (!value)
		return -ENOMEM;
	n = strv_length(*l);
	c = realloc(*l, sizeof(char *) * (n + 2));
	if (!c) {
		free(value);
		return -ENOMEM;
	}
	c[n] = value;
	c[n + 1] = NULL;
	*l = c;
	return 0;
}

int strv_extend(char ***l, const char *value)
{
	return strv_consume(l, strdup(value));
}

bool strv_contains(char *const *l, const char *s)
{
	STRV_FOREACH(i, l)
		if (streq(*i, s))
			return true;
	return false;
}

static int str_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(char **l)
{
	size_t n = strv_length(l);

	if (n > 1)
		qsort(l, n, sizeof(char *), str_compare);
}

int strv_split(const char *s, const char *separators, char ***ret)
{
	_cleanup_strv_free_ char **l = NULL;
	const char *p = s;

	/* an empty vector, not NULL, so callers can tell "nothing" from "not set" */
	l = calloc(1, sizeof(char *));
	if (!l)
		return -ENOMEM;
	while (*p) {
		size_t n;

		p += strspn(p, separators);
		n = strcspn(p, separators);
		if (n == 0)
			break;
		if (strv_consume(&l, strndup(p, n)) < 0)
			return -ENOMEM;
		p += n;
	}
	*ret = TAKE_PTR(l);
	return 0;
}

char *strv_join(char *const *l, const char *sep)
{
	size_t n = 0, k = strlen(sep);
	char *r, *q;

	STRV_FOREACH(i, l)
		n += strlen(*i) + k;
	r = malloc(n + 1);
	if (!r)
		return NULL;
	q = r;
	STRV_FOREACH(i, l) {
		if (q != r) {
			memcpy(q, sep, k);
			q += k;
		}
		q = stpcpy(q, *i);
	}
	*q = 0;
	return r;
}

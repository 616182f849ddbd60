/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macros.h"

/* NULL-terminated string vectors. */
char **strv_free(char **l);
static inline void strv_freep(char ***l)
{
	strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

size_t strv_length(char *const *l);
/* Takes ownership of value (also on failure). */
int strv_consume(char ***l, char *value);
int strv_extend(char ***l, const char *value);
bool strv_contains(char *const *l, const char *s);
void strv_sort(char **l);
/* Splits s at any of the separators, dropping empty fields. */
int strv_split(const char *s, const char *separators, char ***ret);
char *strv_join(char *const *l, const char *sep);

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _pure_ __attribute__((pure))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))
#define _public_ __attribute__((visibility("default")))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define TAKE_PTR(p)                            \
	({                                     \
		__typeof__(p) _p_ = (p);       \
		(p) = NULL;                    \
		_p_;                           \
	})
#define TAKE_FD(fd)                            \
	({                                     \
		int _fd_ = (fd);               \
		(fd) = -EBADF;                 \
		_fd_;                          \
	})

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)         \
	static inline void func##p(type *p)             \
	{                                               \
		if (*p)                                 \
			func(*p);                       \
	}

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -EBADF;
}
static inline void closep(int *fd)
{
	safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline bool streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}
static inline bool isempty(const char *s)
{
	return !s || !*s;
}
static inline const char *strempty(const char *s)
{
	return s ?: "";
}
static inline const char *strna(const char *s)
{
	return s ?: "n/a";
}

/* Returns the part after prefix when s starts with it, else NULL. */
static inline const char *startswith(const char *s, const char *prefix)
{
	size_t l = strlen(prefix);
	return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}
static inline bool endswith(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Negative errno from a libc call that returned -1. */
static inline int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

#define RET_NERRNO(expr)                               \
	({                                             \
		int _r_ = (expr);                      \
		_r_ < 0 ? negative_errno() : _r_;      \
	})

#define ERRNO_NAME(e) errno_name_full(e)
const char *errno_name_full(int e);

#define MALLOC_ELEMENTSOF(n, size) ((size) != 0 && (n) > SIZE_MAX / (size))

/* Grow *p so that it can hold need elements of size sz; *allocated tracks capacity. */
void *greedy_realloc(void **p, size_t *allocated, size_t need, size_t sz);
#define GREEDY_REALLOC(array, allocated, need) \
	greedy_realloc((void **)&(array), &(allocated), (need), sizeof((array)[0]))

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "log.h"

static int max_level = LOG_INFO;
static const char *program = NULL;

void log_set_max_level(int level)
{
	max_level = level;
}

int log_get_max_level(void)
{
	return max_level;
}

void log_set_program(const char *name)
{
	program = name;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (error > 0)
		error = -error;
	if (level > max_level) {
		errno = saved;
		return error;
	}

	if (program)
		fprintf(stderr, "%s: ", program);
	if (level >= LOG_DEBUG)
		fprintf(stderr, "(%s:%d) ", file, line);
	/* %m in fmt refers to the error being logged */
	errno = error < 0 ? -error : saved;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	errno = saved;
	return error;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

#include "macros.h"

/* Reads a whole file (NUL-terminated for convenience); -EFBIG above max_size (0: no limit). */
int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size);
/* Writes data to a temporary file beside path, fsyncs it, renames it over path, fsyncs the
 * directory. Nothing is left behind on failure. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
int mkdir_p(const char *path, mode_t mode);
/* Joins path components with single slashes; NULL-terminated argument list. */
char *path_join_many(const char *first, ...) __attribute__((sentinel));
#define path_join(...) path_join_many(__VA_ARGS__, NULL)
int fsync_directory_of(const char *path);

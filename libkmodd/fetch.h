/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Downloads with libcurl: http, https and file URLs; no redirect to another scheme; a size
 * cap; connect and low-speed timeouts; bounded retries with backoff on transient errors
 * (connection refused/reset, 5xx), none on 4xx or a checksum mismatch. The file appears at
 * dest only when complete and (when a checksum is given) verified: it is written to a
 * temporary beside dest, fsynced and renamed. */

#include <stdint.h>

#include "macros.h"

typedef struct FetchOptions {
	uint64_t max_size;          /* 0: FETCH_DEFAULT_MAX_SIZE */
	unsigned connect_timeout_s; /* 0: 10 */
	unsigned low_speed_time_s;  /* abort below 1 KiB/s for this long; 0: 30 */
	unsigned retries;           /* additional attempts on transient errors; 0 means none */
	const char *sha256;         /* expected checksum (hex), or NULL */
	const char *ca_file;        /* CA certificates for https; NULL: the system's */
	/* progress: called now and then with bytes so far and the total when known (0 if not) */
	void (*progress)(void *userdata, const char *url, uint64_t now, uint64_t total);
	void *userdata;
} FetchOptions;

#define FETCH_DEFAULT_MAX_SIZE (512u * 1024 * 1024)

/* Errors: -ECONNREFUSED/-EHOSTUNREACH/-ETIMEDOUT (server unreachable), -ENOENT (404 or a
 * missing file://), -EPROTO (other HTTP status, bad redirect), -EFBIG (over max_size),
 * -EBADMSG (checksum mismatch), -EPIPE (truncated transfer), -ENOSPC/-EIO (writing).
 * *ret_error, when given, gets a one-line description for the user without the URL (the
 * caller names it): "server returned HTTP 404 (not found)", "cannot connect (connection
 * refused)", "redirect to another scheme refused", "transfer ended early: 80 of 100000
 * bytes", "checksum mismatch (sha256 X, expected Y)", "larger than the limit of N bytes".
 * Transient errors (-ECONNREFUSED, -ECONNRESET, -ETIMEDOUT, -EHOSTUNREACH, -EPIPE, HTTP 5xx,
 * 408, 429) are retried o->retries times, waiting 250 ms, 500 ms, 1 s, ... (at most 8 s). */
int fetch_to_file(const char *url, const char *dest, const FetchOptions *o, char **ret_error);

/* The same into memory (metadata files). */
int fetch_to_memory(const char *url, const FetchOptions *o, char **ret_data, size_t *ret_size,
		    char **ret_error);

/* sha256 of a file, hex. */
int sha256_file(const char *path, char ret[static 65]);

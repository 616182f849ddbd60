/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SHA-256 (FIPS 180-4), streaming. */

#include <stdint.h>

#include "macros.h"

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE 65 /* 64 hex digits and NUL */

typedef struct Sha256 {
	uint32_t h[8];
	uint64_t length; /* bytes so far */
	uint8_t buffer[64];
	size_t buffer_used;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t size);
void sha256_finish(Sha256 *s, uint8_t ret[static SHA256_DIGEST_SIZE]);
/* Finishes and writes lower-case hex. */
void sha256_finish_hex(Sha256 *s, char ret[static SHA256_HEX_SIZE]);

void sha256_buffer_hex(const void *data, size_t size, char ret[static SHA256_HEX_SIZE]);
/* true when s is 64 hex digits (either case) */
bool sha256_hex_valid(const char *s);

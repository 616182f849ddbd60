/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "symvers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Symvers *s = NULL;
	unsigned line = 0;

	if (symvers_parse("fuzz", (const char *)data, size, &s, &line) >= 0) {
		for (size_t i = 0; i < s->n_entries; i++)
			(void)symvers_get(s, s->entries[i].symbol);
		symvers_free(s);
	}
	return 0;
}

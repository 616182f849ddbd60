/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "repomd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Repomd *m = NULL;

	if (repomd_parse((const char *)data, size, &m) >= 0) {
		for (size_t i = 0; i < m->n_data; i++)
			(void)repo_location_safe(m->data[i].location);
		(void)repomd_find(m, "primary");
		repomd_free(m);
	}
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "repo.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char **warnings = NULL;
	RepoConfig *c = NULL;
	size_t n = 0;

	if (repo_config_parse("fuzz.repo", (const char *)data, size, &c, &n, &warnings) >=
	    0) {
		for (size_t i = 0; i < n; i++)
			if (!c[i].id || !repo_url_valid(c[i].baseurl) ||
			    c[i].priority < 1 || c[i].priority > 99)
				abort();
		repo_configs_free(c, n);
		strv_free(warnings);
	}
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "policy.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char **warnings = NULL;
	PolicySet *s = NULL;

	if (policy_set_parse("fuzz.set", (const char *)data, size, &s, &warnings) >= 0) {
		if (!s->name)
			abort();
		STRV_FOREACH(p, s->paths)
			if ((*p)[0] == '/' || strstr(*p, ".."))
				abort();
		(void)policy_set_matches(s, "nft_ct", "kernel/net/netfilter/nft_ct.ko");
		(void)policy_set_matches(s, "e1000", "updates/drivers/net/e1000.ko");
		policy_set_free(s);
	}
	strv_free(warnings);
	return 0;
}

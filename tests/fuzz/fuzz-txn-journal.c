/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "transaction.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)transaction_journal_check((const char *)data, size);
	return 0;
}

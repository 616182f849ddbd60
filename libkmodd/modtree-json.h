/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "modtree.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put);
#define _cleanup_json_put_ _cleanup_(json_object_putp)

typedef enum ModuleJsonFlags {
	MODULE_JSON_INFO = 1 << 0, /* add every modinfo pair as "info" */
} ModuleJsonFlags;

/* The module object of `kmodctl modules --json` (schema in README.md). With symvers given,
 * each required symbol also names its provider from Module.symvers ("provider", null when
 * the kernel does not export it) and the CRC the kernel has ("kernel_crc"). */
int module_to_json(const Module *m, const Symvers *symvers, ModuleJsonFlags flags,
		   struct json_object **ret);

/* "0x%08x", the form of Module.symvers and modprobe --dump-modversions. */
void crc_format(uint64_t crc, char buf[static 19]);

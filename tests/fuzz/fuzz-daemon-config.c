/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kmodd.conf and the watchdog blacklist policy (the same table-driven INI parser). */
#include <stdint.h>

#include "blacklist.h"
#include "daemon-config.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char **warnings = NULL, buf[128];
	DaemonConfig c;
	BlacklistPolicy p = {};

	daemon_config_init(&c);
	(void)daemon_config_parse(&c, "fuzz.conf", (const char *)data, size, &warnings);
	(void)daemon_config_check_modalias(&c, "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00",
					   buf, sizeof(buf));
	(void)daemon_config_check_modalias(&c, "usb:v0BDAp8153d3000dc00dsc00dp00icFFiscFFip00in00",
					   buf, sizeof(buf));
	(void)daemon_config_module_denied(&c, "e1000");
	daemon_config_done(&c);
	warnings = strv_free(warnings);

	(void)blacklist_policy_parse(&p, "fuzz.blacklist", (const char *)data, size, &warnings);
	(void)blacklist_contains(NULL, &p, "i6300esb");
	blacklist_policy_done(&p);
	strv_free(warnings);
	return 0;
}

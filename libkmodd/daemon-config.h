/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* kmodd's settings: /etc/kmodd/kmodd.conf, then drop-ins kmodd.conf.d/NAME.conf from /etc, /run
 * and /usr/lib (a drop-in in /etc hides one of the same name in /run or /usr/lib; all sorted
 * by file name, later ones win), every path under the root. systemd-style INI:
 *
 *   [Daemon]
 *   AutoInstall=on|off|notify-only   install what a new device needs (default on)
 *   AllowedBuses=pci usb virtio      buses (the modalias prefix) served on hotplug; empty: all
 *   AllowedVendors=pci:8086 usb:0bda vendors served on hotplug (BUS:HEXID); empty: all
 *   DeniedModules=nouveau            never installed on hotplug (names or globs)
 *   RequireSignature=no              a package's signature must verify before install
 *   QueueSize=256                    pending device events; more are dropped and rescanned
 *   NegativeCacheSec=3600            remember "nothing provides this modalias" this long
 *   IdleExitSec=60                   exit when idle this long (socket activation); 0: never
 *   MaxConnections=64                control connections at once
 *   MaxMessageSize=65536             bytes per Varlink message
 *
 * A malformed line is reported as "file:line: what is wrong", skipped, and the rest applies. */

#include <stdint.h>

#include "macros.h"

typedef enum AutoInstallMode {
	AUTO_INSTALL_ON,
	AUTO_INSTALL_OFF,
	AUTO_INSTALL_NOTIFY_ONLY,
	_AUTO_INSTALL_MAX,
	_AUTO_INSTALL_INVALID = -EINVAL,
} AutoInstallMode;

const char *auto_install_mode_to_string(AutoInstallMode m);
AutoInstallMode auto_install_mode_from_string(const char *s);

typedef struct DaemonConfig {
	AutoInstallMode auto_install;
	char **allowed_buses;   /* NULL: all */
	char **allowed_vendors; /* "pci:8086"; NULL: all */
	char **denied_modules;
	bool require_signature;
	unsigned queue_size;
	unsigned negative_cache_sec;
	unsigned idle_exit_sec;
	unsigned max_connections;
	unsigned max_message_size;
} DaemonConfig;

void daemon_config_init(DaemonConfig *c);
void daemon_config_done(DaemonConfig *c);

/* Applies one file's text to c; problems are appended to *warnings. (The fuzz target.) */
int daemon_config_parse(DaemonConfig *c, const char *file, const char *text, size_t size,
			char ***warnings);
/* Defaults, then kmodd.conf and the drop-ins under root. */
int daemon_config_load(DaemonConfig *c, const char *root, char ***warnings);

/* Policy for a device: NULL when hotplug may install for it, else why not ("bus usb is not
 * in AllowedBuses"). */
const char *daemon_config_check_modalias(const DaemonConfig *c, const char *modalias,
					 char *buf, size_t size);
bool daemon_config_module_denied(const DaemonConfig *c, const char *module);

/* ---- the table-driven INI parser, shared with the other kmodd configuration files ---- */

typedef int (*ConfigParser)(const char *value, void *dest);

typedef struct ConfigItem {
	const char *section;
	const char *key;
	ConfigParser parse; /* -EINVAL (or another -errno) when the value is malformed */
	size_t offset;      /* of the destination in the object */
} ConfigItem;

/* Parses text against the table into the object at base. Unknown sections and keys,
 * malformed lines and values become "file:line: ..." warnings. */
int config_parse_table(const ConfigItem *table, size_t n_table, void *base, const char *file,
		       const char *text, size_t size, char ***warnings);

int config_parse_bool(const char *value, void *dest);     /* bool */
int config_parse_unsigned(const char *value, void *dest); /* unsigned, decimal */
int config_parse_strv(const char *value, void *dest);     /* char **: words; empty resets */
int config_parse_string(const char *value, void *dest);   /* char *: empty resets */

/* The files of a configuration: main (may be NULL) under <root>/etc, then the drop-ins
 * "<dir>/NAME<suffix>" from <root>/etc, <root>/run and <root>/usr/lib, an /etc name hiding the same
 * name elsewhere, sorted by name. */
int config_files(const char *root, const char *main_rel, const char *dropin_rel, const char *suffix,
		 char ***ret);

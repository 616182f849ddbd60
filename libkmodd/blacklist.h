/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The watchdog blacklist: watchdog drivers are never loaded automatically (a watchdog that
 * nobody pets reboots the machine). The list is derived from each kernel's own tree —
 * every module under drivers/watchdog/ (recursively, compressed ones too, in kernel/,
 * updates/, extra/ and the kernel's modules.order, which names modules a minimal install
 * lacks) plus watchdog drivers elsewhere (ipmi_watchdog, ...) — and written as a modprobe.d
 * blacklist. The admin may allow exactly one.
 *
 * The policy: watchdog.blacklist in <root>/usr/lib/kmodd/policies/, overridden by the file of
 * the same name in <root>/etc/kmodd/policies/ (built-in defaults when neither exists):
 *
 *   [Blacklist]
 *   Paths=drivers/watchdog/         tree directories whose modules are watchdogs
 *   Modules=ipmi_watchdog           more watchdog modules (names or globs)
 *   Allow=i6300esb                  the one watchdog that may be loaded (empty: none)
 */

#include "macros.h"

#define BLACKLIST_POLICY_FILE "watchdog.blacklist"
#define BLACKLIST_MODPROBE_FILE "kmodd-watchdog.conf"

typedef struct BlacklistPolicy {
	char **paths;
	char **modules;
	char *allow;
	char *file; /* where it came from; NULL for the built-in defaults */
} BlacklistPolicy;

void blacklist_policy_done(BlacklistPolicy *p);
/* Parses a policy file's text over the defaults. (The fuzz target.) */
int blacklist_policy_parse(BlacklistPolicy *p, const char *file, const char *text, size_t size,
			   char ***warnings);
int blacklist_policy_load(const char *root, BlacklistPolicy *ret, char ***warnings);
/* Writes <root>/etc/kmodd/policies/watchdog.blacklist with Allow=name (NULL: none). */
int blacklist_policy_set_allow(const char *root, const BlacklistPolicy *p, const char *name,
			       char **ret_path);

/* Module names ('-' as '_') of the watchdog drivers of kver's tree, sorted, unique. */
int blacklist_watchdog_modules(const char *root, const char *kver, const BlacklistPolicy *p,
			       char ***ret);
/* Every kernel release under <root>/lib/modules with a module tree, sorted. */
int blacklist_kernels(const char *root, char ***ret);

/* Writes <root>/<dir>/kmodd-watchdog.conf ("etc/modprobe.d" or "run/modprobe.d"): a
 * "blacklist NAME" line for every watchdog module of every installed kernel but the allowed
 * one. *ret_n (optional): how many modules are blacklisted. */
int blacklist_write(const char *root, const char *dir, const BlacklistPolicy *p,
		    size_t *ret_n);

/* "e1000-x" -> "e1000_x" in place. */
char *module_name_normalize(char *name);
/* Is module (any of '-'/'_') a watchdog by the policy and the list? */
bool blacklist_contains(char *const *watchdogs, const BlacklistPolicy *p, const char *module);

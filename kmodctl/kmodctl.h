/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <getopt.h>

#include "kmodctl-common.h"
#include "macros.h"
#include "modtree.h"
#include "transaction.h"

/* Opens the tree selected by --root/--kernel and logs a clear error on failure. */
int open_tree(ModTreeFlags flags, ModTree **ret);
/* Loads Module.symvers (--symvers or the kernel's own) and logs a clear error on failure. */
int load_symvers(ModTree *t);
/* Logs a failure of modtree_load_modules()/modtree_read_module(). */
int log_tree_error(ModTree *t, int r);


/* For verbs that run transactions (txn-util.c): the kernel of --kernel or the default one;
 * logging a failed transaction once (returns the exit status: EXIT_LOCKED or 1); a note when
 * an interrupted transaction was recovered first; a y/N question on a TTY (true otherwise);
 * "verb args..." for the history. */
int txn_kernel(char **ret);
int txn_log_error(const TxnReport *rep, int r);
void txn_print_recovery(const TxnReport *rep);
bool txn_confirm(const char *question);
char *txn_command_line(const char *verb, int argc, char *argv[]);

/* kmodctl list without --installed: what the repositories offer. list.c has a weak
 * default that says it is not available; the resolver's verb file provides the real one. */
int list_available(int argc, char *argv[]);

int verb_modules(int argc, char *argv[]);
int verb_info(int argc, char *argv[]);
int verb_depmod(int argc, char *argv[]);
int verb_repo(int argc, char *argv[]);
int verb_remove(int argc, char *argv[]);
int verb_list(int argc, char *argv[]);
int verb_history(int argc, char *argv[]);
int verb_why(int argc, char *argv[]);
int verb_verify(int argc, char *argv[]);
int verb_recover(int argc, char *argv[]);
int verb_audit(int argc, char *argv[]);
int verb_kernel(int argc, char *argv[]);
/* For the resolving verbs (install.c): the resolver of --root/--kernel with warnings logged;
 * resolve needs, show the plan, confirm, install and load (returns an exit status). */
typedef struct Resolver Resolver;
int open_resolver(Resolver **ret, char **ret_kver);
int install_needs(Resolver *r, const char *kver, int kind, char *const *needs, int reason,
		  const char *device, const char *command, bool load);

int verb_search(int argc, char *argv[]);
int verb_what_provides(int argc, char *argv[]);
int verb_install(int argc, char *argv[]);
int verb_ensure(int argc, char *argv[]);
int verb_scan(int argc, char *argv[]);
int verb_status(int argc, char *argv[]);
int verb_daemon(int argc, char *argv[]);
int verb_watchdog(int argc, char *argv[]);
/* daemon.c: asks a running kmodd to scan the devices again; <0 when none runs. */
int daemon_request_scan(void);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <getopt.h>

#include "macros.h"
#include "modtree.h"

/* Options every verb accepts, before or after the verb name. */
extern const char *arg_root;
extern const char *arg_kernel;
extern const char *arg_symvers;
extern bool arg_json;

enum {
	ARG_COMMON_ROOT = 0x1000,
	ARG_COMMON_KERNEL,
	ARG_COMMON_SYMVERS,
	ARG_COMMON_JSON,
	ARG_COMMON_VERBOSE,
	ARG_VERB_BASE = 0x1100, /* verbs number their own long options from here */
};

#define COMMON_LONG_OPTIONS                                          \
	{ "root", required_argument, NULL, ARG_COMMON_ROOT },        \
	{ "kernel", required_argument, NULL, ARG_COMMON_KERNEL },    \
	{ "symvers", required_argument, NULL, ARG_COMMON_SYMVERS },  \
	{ "json", no_argument, NULL, ARG_COMMON_JSON },              \
	{ "verbose", no_argument, NULL, ARG_COMMON_VERBOSE },        \
	{ "help", no_argument, NULL, 'h' }

/* Handles a common option; returns 1 when c was one, 0 when not. */
int parse_common_option(int c, const char *value);

/* Exit codes */
#define EXIT_USAGE 2

/* Opens the tree selected by --root/--kernel and logs a clear error on failure. */
int open_tree(ModTreeFlags flags, ModTree **ret);
/* Loads Module.symvers (--symvers or the kernel's own) and logs a clear error on failure. */
int load_symvers(ModTree *t);
/* Logs a failure of modtree_load_modules()/modtree_read_module(). */
int log_tree_error(ModTree *t, int r);

const char *program_name(void);

int verb_modules(int argc, char *argv[]);
int verb_info(int argc, char *argv[]);
int verb_depmod(int argc, char *argv[]);
int verb_repo(int argc, char *argv[]);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What both kmodctl binaries share: the common options, the exit codes and the verb
 * dispatch (common.c). */

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

/* Options every verb accepts, before or after the verb name. */
extern const char *arg_root;
extern const char *arg_kernel;
extern const char *arg_symvers;
extern bool arg_json;
extern bool arg_dry_run; /* --dry-run: show what would be done, change nothing */
extern bool arg_yes;     /* -y, --yes: do not ask for confirmation */

enum {
	ARG_COMMON_ROOT = 0x1000,
	ARG_COMMON_KERNEL,
	ARG_COMMON_SYMVERS,
	ARG_COMMON_JSON,
	ARG_COMMON_VERBOSE,
	ARG_COMMON_DRY_RUN,
	ARG_VERB_BASE = 0x1100, /* verbs number their own long options from here */
};

#define COMMON_LONG_OPTIONS                                          \
	{ "root", required_argument, NULL, ARG_COMMON_ROOT },        \
	{ "kernel", required_argument, NULL, ARG_COMMON_KERNEL },    \
	{ "symvers", required_argument, NULL, ARG_COMMON_SYMVERS },  \
	{ "json", no_argument, NULL, ARG_COMMON_JSON },              \
	{ "verbose", no_argument, NULL, ARG_COMMON_VERBOSE },        \
	{ "dry-run", no_argument, NULL, ARG_COMMON_DRY_RUN },        \
	{ "yes", no_argument, NULL, 'y' },                           \
	{ "help", no_argument, NULL, 'h' }

/* Handles a common option; returns 1 when c was one, 0 when not. Short options: 'y'
 * (verbs put "y" in their getopt string). */
int parse_common_option(int c, const char *value);

/* Exit codes */
#define EXIT_USAGE 2
#define EXIT_NO_MATCH 3      /* nothing provides what was asked */
#define EXIT_UNSATISFIABLE 4 /* the request cannot be satisfied (dependency problem) */
#define EXIT_LOCKED 5        /* another writer holds the lock */
#define EXIT_DIFFERENCES 6   /* verification found differences */

const char *program_name(void);

typedef struct Verb {
	const char *name;
	int (*run)(int argc, char *argv[]);
	const char *summary;
} Verb;

/* Parses the options before the verb and runs it; a verb without run goes to other(argv),
 * with argv as given. */
int kmodctl_run(int argc, char *argv[], const Verb *verbs, size_t n_verbs,
		int (*other)(char *argv[]));

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kmodctl search, what-provides, and list (what the repositories offer). */
#include <json-c/json.h>
#include <strings.h>

#include <solv/repo.h>

#include "kmodctl.h"
#include "log.h"
#include "modtree-json.h"
#include "resolve.h"
#include "strv.h"

static json_object *solvable_json(Resolver *r, Id p)
{
	_cleanup_(package_ref_done) PackageRef ref = {};
	_cleanup_strv_free_ char **mods = NULL;
	Pool *pool = resolver_pool(r);
	json_object *o = json_object_new_object(), *m = json_object_new_array();
	const char *summary = solvable_lookup_str(pool->solvables + p, SOLVABLE_SUMMARY);

	if (resolver_solvable_ref(r, p, &ref) < 0)
		return o;
	(void)resolver_solvable_modules(r, p, &mods);
	json_object_object_add(o, "name", json_object_new_string(ref.name));
	json_object_object_add(o, "evr", json_object_new_string(strempty(ref.evr)));
	json_object_object_add(o, "arch", json_object_new_string(strempty(ref.arch)));
	json_object_object_add(o, "repository",
			       ref.repo_id ? json_object_new_string(ref.repo_id) : NULL);
	json_object_object_add(o, "installed",
			       json_object_new_boolean(resolver_solvable_installed(r, p)));
	json_object_object_add(o, "summary",
			       summary ? json_object_new_string(summary) : NULL);
	STRV_FOREACH(s, mods)
		json_object_array_add(m, json_object_new_string(*s));
	json_object_object_add(o, "modules", m);
	json_object_object_add(o, "download_size",
			       json_object_new_int64((int64_t)ref.download_size));
	return o;
}

static void solvable_line(Resolver *r, Id p)
{
	Pool *pool = resolver_pool(r);
	Solvable *s = pool->solvables + p;
	const char *summary = solvable_lookup_str(s, SOLVABLE_SUMMARY);

	printf("%-36s %-14s %-10s %s\n", pool_id2str(pool, s->name),
	       pool_id2str(pool, s->evr),
	       resolver_solvable_installed(r, p) ? "@System" : strna(s->repo->name),
	       strempty(summary));
}

static int print_solvables(Resolver *r, const Queue *q, const char *none)
{
	if (arg_json) {
		_cleanup_json_put_ json_object *a = json_object_new_array();

		for (int i = 0; i < q->count; i++)
			json_object_array_add(a, solvable_json(r, q->elements[i]));
		printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY));
		return 0;
	}
	if (q->count == 0) {
		printf("%s\n", none);
		return 0;
	}
	printf("%-36s %-14s %-10s %s\n", "PACKAGE", "VERSION", "REPO", "SUMMARY");
	for (int i = 0; i < q->count; i++)
		solvable_line(r, q->elements[i]);
	return 0;
}

static int parse_simple(int argc, char *argv[], const struct option *options,
			void (*help)(void), const char **ret_modalias)
{
	int c;

	while ((c = getopt_long(argc, argv, "hy", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_VERB_BASE:
			if (ret_modalias)
				*ret_modalias = optarg;
			break;
		default:
			return -EINVAL;
		}
	}
	return 1;
}

static void search_help(void)
{
	printf("Usage: kmodctl [--root DIR] search TEXT [--json]\n\n"
	       "Packages of the enabled repositories whose name, modules or summary contain TEXT\n"
	       "(case-insensitive; '-' and '_' alike in module names). Exit status 3 when none.\n");
}

int verb_search(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{},
	};
	_cleanup_resolver_free_ Resolver *r = NULL;
	_cleanup_free_ char *text = NULL;
	Pool *pool;
	Queue q;
	Id p;
	int k;

	k = parse_simple(argc, argv, options, search_help, NULL);
	if (k <= 0)
		return k < 0 ? EXIT_USAGE : 0;
	if (optind != argc - 1 || isempty(argv[optind])) {
		log_error("Give one search text; see 'kmodctl search --help'.");
		return EXIT_USAGE;
	}
	text = strdup(argv[optind]);
	if (!text)
		return log_oom(), EXIT_FAILURE;
	for (char *c = text; *c; c++)
		if (*c == '-')
			*c = '_';
	if (open_resolver(&r, NULL) < 0)
		return EXIT_FAILURE;
	pool = resolver_pool(r);

	queue_init(&q);
	FOR_POOL_SOLVABLES(p) {
		Solvable *s = pool->solvables + p;
		_cleanup_free_ char *name = NULL;
		_cleanup_strv_free_ char **mods = NULL;
		const char *summary;
		bool hit = false;

		if (resolver_solvable_installed(r, p))
			continue;
		name = strdup(pool_id2str(pool, s->name));
		if (!name)
			break;
		for (char *c = name; *c; c++)
			if (*c == '-')
				*c = '_';
		hit = strcasestr(name, text) != NULL;
		if (!hit && resolver_solvable_modules(r, p, &mods) >= 0)
			STRV_FOREACH(m, mods)
				if (strcasestr(*m, text))
					hit = true;
		summary = solvable_lookup_str(s, SOLVABLE_SUMMARY);
		if (!hit && summary && strcasestr(summary, argv[optind]))
			hit = true;
		if (hit)
			queue_push(&q, p);
	}
	print_solvables(r, &q, "No package matches.");
	k = q.count == 0 ? EXIT_NO_MATCH : 0;
	queue_free(&q);
	return k;
}

static void what_provides_help(void)
{
	printf("Usage: kmodctl [--root DIR] what-provides CAPABILITY [--json]\n"
	       "       kmodctl what-provides --modalias MODALIAS [--json]\n\n"
	       "Packages (installed ones as @System) providing a capability in rpm syntax, e.g.\n"
	       "'kmod(e1000.ko)' or 'ksym(amd64:netif_rx) = 1a2b3c4d'; or the repository packages\n"
	       "whose modalias supplements match a device modalias. Exit status 3 when none.\n");
}

int verb_what_provides(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "modalias", required_argument, NULL, ARG_VERB_BASE },
		{},
	};
	_cleanup_resolver_free_ Resolver *r = NULL;
	const char *modalias = NULL;
	Queue q;
	int k;

	k = parse_simple(argc, argv, options, what_provides_help, &modalias);
	if (k <= 0)
		return k < 0 ? EXIT_USAGE : 0;
	if ((modalias && optind != argc) || (!modalias && optind != argc - 1)) {
		log_error(
			"Give one capability or --modalias M; see 'kmodctl what-provides --help'.");
		return EXIT_USAGE;
	}
	if (open_resolver(&r, NULL) < 0)
		return EXIT_FAILURE;
	queue_init(&q);
	k = resolver_what_provides(r, modalias ?: argv[optind], !!modalias, &q);
	if (k == -EINVAL) {
		queue_free(&q);
		log_error(
			"'%s' is not a capability in rpm syntax (NAME or 'NAME = VERSION').",
			argv[optind]);
		return EXIT_USAGE;
	}
	print_solvables(r, &q, "Nothing provides it.");
	k = q.count == 0 ? EXIT_NO_MATCH : 0;
	queue_free(&q);
	return k;
}

static void list_help(void)
{
	printf("Usage: kmodctl [--root DIR] list [--json]\n"
	       "       kmodctl [--root DIR] [--kernel KVER] list --installed [--json]\n\n"
	       "Without --installed: every package the enabled repositories offer (from their\n"
	       "cached metadata; 'kmodctl repo refresh' updates it).\n");
}

/* kmodctl list (without --installed): every package the enabled repositories offer. */
int list_available(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{},
	};
	_cleanup_resolver_free_ Resolver *r = NULL;
	Pool *pool;
	Queue q;
	Id p;
	int k;

	k = parse_simple(argc, argv, options, list_help, NULL);
	if (k <= 0)
		return k < 0 ? EXIT_USAGE : 0;
	if (optind < argc) {
		log_error("Unexpected argument '%s'; see 'kmodctl list --help'.",
			  argv[optind]);
		return EXIT_USAGE;
	}
	if (open_resolver(&r, NULL) < 0)
		return EXIT_FAILURE;
	pool = resolver_pool(r);
	queue_init(&q);
	FOR_POOL_SOLVABLES(p)
		if (!resolver_solvable_installed(r, p))
			queue_push(&q, p);
	print_solvables(r, &q, "The enabled repositories offer no package.");
	queue_free(&q);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <time.h>

#include "kmodctl.h"
#include "kmodd-cleanup.h"
#include "log.h"
#include "modtree-json.h"
#include "repo.h"
#include "strv.h"

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] repo add ID URL [--name N] [--gpgkey KEY] [--no-gpgcheck]\n"
	       "                                    [--priority P] [--sslcacert F] [--disabled]\n"
	       "       kmodctl [--root DIR] repo remove ID\n"
	       "       kmodctl [--root DIR] repo list [--json]\n"
	       "       kmodctl [--root DIR] repo refresh [ID...] [--force]\n\n"
	       "Manage the KMP repositories of /etc/kmodd/repos.d (zypper/dnf .repo files).\n\n"
	       "  add ID URL       add a repository; URL is http://, https:// or file://\n"
	       "    --name N       a description\n"
	       "    --gpgkey KEY   URL or absolute path of the repository's armored public key\n"
	       "    --no-gpgcheck  do not require a signed repodata/repomd.xml\n"
	       "    --priority P   1 (preferred) to 99 (default)\n"
	       "    --sslcacert F  CA certificates for an https URL (default: the system's)\n"
	       "    --disabled     add it disabled\n"
	       "  remove ID        remove it, with its cached metadata\n"
	       "  list             every repository and its cached metadata\n"
	       "  refresh [ID...]  fetch and verify metadata (every enabled repository by\n"
	       "                   default); unchanged metadata is not parsed again\n"
	       "    --force        fetch and parse even when unchanged\n");
}

static void log_warnings(char **warnings)
{
	STRV_FOREACH(w, warnings)
		log_warning("%s", *w);
}

static int load_configs(RepoConfig **ret, size_t *ret_n)
{
	_cleanup_strv_free_ char **warnings = NULL;
	int r;

	r = repo_configs_load(arg_root, ret, ret_n, &warnings);
	if (r < 0)
		return log_error_errno(r, "Failed to read %s/etc/kmodd/repos.d: %m",
				       streq(arg_root, "/") ? "" : arg_root);
	log_warnings(warnings);
	return 0;
}

static int repo_add(char **args, const RepoConfig *opts)
{
	_cleanup_free_ char *path = NULL;
	RepoConfig c = *opts;
	int r;

	if (strv_length(args) != 2) {
		log_error(
			"Usage: kmodctl repo add ID URL [OPTIONS]; see 'kmodctl repo --help'.");
		return EXIT_USAGE;
	}
	c.id = args[0];
	c.baseurl = args[1];
	if (!repo_id_valid(c.id)) {
		log_error("Invalid repository id '%s': use letters, digits and ._-:+@.",
			  c.id);
		return EXIT_USAGE;
	}
	if (!repo_url_valid(c.baseurl)) {
		log_error("Invalid repository URL '%s': use http://, https:// or file://.",
			  c.baseurl);
		return EXIT_USAGE;
	}
	if (c.gpgkey && !repo_url_valid(c.gpgkey) && c.gpgkey[0] != '/') {
		log_error("Invalid --gpgkey '%s': give an absolute path or an http, https or file "
			  "URL.",
			  c.gpgkey);
		return EXIT_USAGE;
	}
	if (c.gpgcheck && !c.gpgkey) {
		log_error("Repository '%s' needs --gpgkey KEY to check its signature, or "
			  "--no-gpgcheck.",
			  c.id);
		return EXIT_USAGE;
	}
	if (c.name && strpbrk(c.name, "\r\n")) {
		log_error("Invalid --name: a single line is needed.");
		return EXIT_USAGE;
	}

	r = repo_config_add(arg_root, &c, &path);
	if (r == -EEXIST)
		return log_error_errno(r,
				       "Repository '%s' already exists; remove it first or "
				       "choose another id.",
				       c.id);
	if (r < 0)
		return log_error_errno(r, "Failed to add repository '%s' under %s: %m",
				       c.id, arg_root);
	printf("Added repository '%s' (%s) in %s.\n", c.id, c.baseurl, path);
	return 0;
}

static int repo_remove(char **args)
{
	int ret = 0;

	if (strv_length(args) == 0) {
		log_error("Usage: kmodctl repo remove ID...");
		return EXIT_USAGE;
	}
	STRV_FOREACH(id, args) {
		_cleanup_free_ char *path = NULL;
		int r;

		r = repo_config_remove(arg_root, *id, &path);
		if (r == -ENOENT) {
			ret = log_error_errno(
				r, "No repository '%s'; see 'kmodctl repo list'.", *id);
			continue;
		}
		if (r < 0) {
			ret = log_error_errno(r, "Failed to remove repository '%s': %m",
					      *id);
			continue;
		}
		printf("Removed repository '%s' (%s).\n", *id, path);
	}
	return ret;
}

static int repo_list(void)
{
	_cleanup_(pool_freep) Pool *pool = NULL;
	_cleanup_json_put_ struct json_object *array = NULL;
	RepoConfig *configs = NULL;
	size_t n = 0;
	int r;

	r = load_configs(&configs, &n);
	if (r < 0)
		return r;
	pool = pool_create();
	if (!pool) {
		repo_configs_free(configs, n);
		return log_oom();
	}
	r = repo_add_cached_to_pool(arg_root, pool, configs, n, NULL);
	if (r < 0) {
		repo_configs_free(configs, n);
		return log_error_errno(r, "Failed to load the cached repositories: %m");
	}

	if (arg_json)
		array = json_object_new_array();
	else if (n > 0)
		printf("%-16s %-8s %-4s %-4s %8s  %-19s %s\n", "ID", "ENABLED", "GPG",
		       "PRIO", "PACKAGES", "METADATA", "URL");
	for (size_t i = 0; i < n; i++) {
		const RepoConfig *c = &configs[i];
		RepoState st;
		Repo *repo = NULL;
		Id rid;
		char when[32] = "-";
		bool have_state = repo_state_read(arg_root, c->id, &st) >= 0;

		FOR_REPOS(rid, repo)
			if (repo->appdata == c)
				break;
		if (rid >= pool->nrepos)
			repo = NULL;
		if (have_state) {
			time_t t = (time_t)st.timestamp;
			struct tm tm;

			if (gmtime_r(&t, &tm))
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		}

		if (arg_json) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "id", json_object_new_string(c->id));
			json_object_object_add(o, "name",
					       json_object_new_string(c->name ?: c->id));
			json_object_object_add(o, "baseurl",
					       json_object_new_string(c->baseurl));
			json_object_object_add(o, "enabled",
					       json_object_new_boolean(c->enabled));
			json_object_object_add(o, "gpgcheck",
					       json_object_new_boolean(c->gpgcheck));
			json_object_object_add(o, "gpgkey",
					       c->gpgkey ?
						       json_object_new_string(c->gpgkey) :
						       NULL);
			json_object_object_add(o, "priority",
					       json_object_new_int(c->priority));
			json_object_object_add(o, "sslcacert",
					       c->sslcacert ? json_object_new_string(
								      c->sslcacert) :
							      NULL);
			json_object_object_add(o, "file", json_object_new_string(c->file));
			json_object_object_add(o, "packages",
					       repo ? json_object_new_int(
							      repo->nsolvables) :
						      NULL);
			json_object_object_add(o, "timestamp",
					       have_state ?
						       json_object_new_int64(
							       (int64_t)st.timestamp) :
						       NULL);
			json_object_object_add(o, "refreshed",
					       have_state ?
						       json_object_new_int64(
							       (int64_t)st.refreshed) :
						       NULL);
			json_object_array_add(array, o);
		} else {
			char pk[16] = "-";

			if (repo)
				snprintf(pk, sizeof(pk), "%d", repo->nsolvables);
			printf("%-16s %-8s %-4s %-4d %8s  %-19s %s\n", c->id,
			       c->enabled ? "yes" : "no", c->gpgcheck ? "yes" : "no",
			       c->priority, pk, when, c->baseurl);
		}
	}
	if (arg_json)
		puts(json_object_to_json_string_ext(
			array, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (n == 0 && isatty(STDOUT_FILENO))
		printf("No repositories; add one with 'kmodctl repo add ID URL'.\n");
	pool_free(TAKE_PTR(pool));
	repo_configs_free(configs, n);
	if (fflush(stdout) != 0 || ferror(stdout))
		return log_error_errno(
			-EIO, "Failed to write the repository list to standard output.");
	return 0;
}

typedef struct Progress {
	const char *id;
	char *url; /* the file shown */
	bool shown;
	struct timespec last;
} Progress;

static void progress(void *userdata, const char *url, uint64_t now, uint64_t total)
{
	Progress *p = userdata;
	struct timespec ts;
	const char *file = strrchr(url, '/') ? strrchr(url, '/') + 1 : url;
	size_t l = strlen(file);
	const char *dots = l > 32 ? "..." : "";

	file += l > 32 ? l - 29 : 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* a new file shows at once, then at most ten updates a second */
	if (p->shown && streq_ptr(p->url, url) &&
	    (ts.tv_sec - p->last.tv_sec) * 1000 +
			    (ts.tv_nsec - p->last.tv_nsec) / 1000000 <
		    100)
		return;
	if (!streq_ptr(p->url, url)) {
		free(p->url);
		p->url = strdup(url);
	}
	p->last = ts;
	p->shown = true;
	if (total > 0)
		fprintf(stderr, "\r\033[K%s: %s%s %.1f/%.1f MiB", p->id, dots, file,
			(double)now / 1048576.0, (double)total / 1048576.0);
	else
		fprintf(stderr, "\r\033[K%s: %s%s %.1f MiB", p->id, dots, file,
			(double)now / 1048576.0);
	fflush(stderr);
}

static int repo_refresh_verb(char **args, bool force)
{
	_cleanup_json_put_ struct json_object *array =
		arg_json ? json_object_new_array() : NULL;
	RepoConfig *configs = NULL;
	size_t n = 0;
	bool tty = isatty(STDERR_FILENO);
	int r, ret = 0, done = 0;

	r = load_configs(&configs, &n);
	if (r < 0)
		return r;
	STRV_FOREACH(id, args)
		if (!repo_configs_find(configs, n, *id)) {
			ret = log_error_errno(
				-ENOENT, "No repository '%s'; see 'kmodctl repo list'.",
				*id);
		}

	for (size_t i = 0; i < n; i++) {
		RepoConfig *c = &configs[i];
		_cleanup_(repo_refresh_result_done) RepoRefreshResult res = {};
		Progress p = { .id = c->id };
		FetchOptions o = { .retries = 2,
				   .progress = tty ? progress : NULL,
				   .userdata = &p };
		char when[32] = "?";
		time_t t;
		struct tm tm;

		if (args ? !strv_contains(args, c->id) : !c->enabled)
			continue;
		r = repo_refresh(arg_root, c, force ? REPO_REFRESH_FORCE : 0, &o, &res);
		if (p.shown)
			fputs("\r\033[K", stderr);
		free(p.url);
		done++;
		if (array) {
			struct json_object *j = json_object_new_object();

			json_object_object_add(j, "id", json_object_new_string(c->id));
			json_object_object_add(j, "ok", json_object_new_boolean(r >= 0));
			json_object_object_add(j, "changed",
					       json_object_new_boolean(res.changed));
			json_object_object_add(j, "packages",
					       r >= 0 ? json_object_new_int64(
								res.n_solvables) :
							NULL);
			json_object_object_add(j, "timestamp",
					       r >= 0 ? json_object_new_int64(
								(int64_t)res.timestamp) :
							NULL);
			json_object_object_add(j, "error",
					       r < 0 ? json_object_new_string(
							       res.error ?: strerror(-r)) :
						       NULL);
			json_object_array_add(array, j);
		}
		if (r < 0) {
			if (res.error)
				ret = log_error_errno(
					r, "Failed to refresh repository '%s': %s", c->id,
					res.error);
			else
				ret = log_error_errno(
					r, "Failed to refresh repository '%s': %m", c->id);
			continue;
		}
		t = (time_t)res.timestamp;
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		if (!array)
			printf("Repository '%s': %u packages, metadata of %s%s.\n", c->id,
			       res.n_solvables, when, res.changed ? "" : " (unchanged)");
	}
	if (done == 0 && !args && ret == 0)
		log_notice(
			"No enabled repositories; add one with 'kmodctl repo add ID URL'.");
	if (array)
		puts(json_object_to_json_string_ext(
			array, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	repo_configs_free(configs, n);
	return ret;
}

int verb_repo(int argc, char *argv[])
{
	enum {
		ARG_NAME = ARG_VERB_BASE,
		ARG_GPGKEY,
		ARG_NO_GPGCHECK,
		ARG_PRIORITY,
		ARG_DISABLED,
		ARG_FORCE,
		ARG_SSLCACERT,
	};
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "name", required_argument, NULL, ARG_NAME },
		{ "gpgkey", required_argument, NULL, ARG_GPGKEY },
		{ "no-gpgcheck", no_argument, NULL, ARG_NO_GPGCHECK },
		{ "priority", required_argument, NULL, ARG_PRIORITY },
		{ "disabled", no_argument, NULL, ARG_DISABLED },
		{ "force", no_argument, NULL, ARG_FORCE },
		{ "sslcacert", required_argument, NULL, ARG_SSLCACERT },
		{},
	};
	_cleanup_strv_free_ char **args = NULL;
	RepoConfig opts = { .enabled = true, .gpgcheck = true, .priority = 99 };
	bool force = false, add_options = false;
	const char *sub;
	int c;

	while ((c = getopt_long(argc, argv, "-h", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_NAME:
			opts.name = optarg;
			add_options = true;
			break;
		case ARG_GPGKEY:
			opts.gpgkey = optarg;
			add_options = true;
			break;
		case ARG_NO_GPGCHECK:
			opts.gpgcheck = false;
			add_options = true;
			break;
		case ARG_PRIORITY: {
			char *end;
			long l;

			errno = 0;
			l = strtol(optarg, &end, 10);
			if (errno != 0 || *end || end == optarg || l < 1 || l > 99) {
				log_error(
					"Invalid --priority '%s': give a number from 1 to 99.",
					optarg);
				return EXIT_USAGE;
			}
			opts.priority = (int)l;
			add_options = true;
			break;
		}
		case ARG_DISABLED:
			opts.enabled = false;
			add_options = true;
			break;
		case ARG_FORCE:
			force = true;
			break;
		case ARG_SSLCACERT:
			if (optarg[0] != '/' || strpbrk(optarg, "\r\n")) {
				log_error(
					"Invalid --sslcacert '%s': give an absolute path.",
					optarg);
				return EXIT_USAGE;
			}
			opts.sslcacert = optarg;
			add_options = true;
			break;
		case 1:
			if (strv_extend(&args, optarg) < 0)
				return log_oom();
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (!args) {
		help();
		return EXIT_USAGE;
	}
	sub = args[0];
	if (add_options && !streq(sub, "add")) {
		log_error(
			"--name, --gpgkey, --no-gpgcheck, --priority, --sslcacert and --disabled "
			"go with 'repo add'.");
		return EXIT_USAGE;
	}
	if (force && !streq(sub, "refresh")) {
		log_error("--force goes with 'repo refresh'.");
		return EXIT_USAGE;
	}
	if (streq(sub, "add"))
		return repo_add(args + 1, &opts);
	if (streq(sub, "remove") || streq(sub, "rm"))
		return repo_remove(args + 1);
	if (streq(sub, "list") || streq(sub, "ls")) {
		if (args[1]) {
			log_error("Unexpected argument '%s'; see 'kmodctl repo --help'.",
				  args[1]);
			return EXIT_USAGE;
		}
		return repo_list();
	}
	if (streq(sub, "refresh"))
		return repo_refresh_verb(args[1] ? args + 1 : NULL, force);
	log_error("Unknown 'repo' command '%s': use add, remove, list or refresh.", sub);
	return EXIT_USAGE;
}

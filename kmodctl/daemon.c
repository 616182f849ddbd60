/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kmodctl status, kmodctl daemon ...: talking to a running kmodd over Varlink. */
#include <json-c/json.h>

#include "kmodctl.h"
#include "log.h"
#include "strv.h"
#include "varlink.h"

#define CALL_TIMEOUT_MS (10 * 60 * 1000)

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] status [--json]\n"
	       "       kmodctl [--root DIR] daemon status|scan|refresh|monitor [--json]\n"
	       "       kmodctl [--root DIR] daemon handle MODALIAS [DEVPATH] [--json]\n"
	       "       kmodctl [--root DIR] daemon install [--dry-run] MODULE...\n"
	       "       kmodctl [--root DIR] daemon remove [--force] PACKAGE...\n"
	       "       kmodctl [--root DIR] daemon ensure [--dry-run] SET\n\n"
	       "Talk to the running kmodd on DIR/run/kmodd/io.kmodd (Varlink io.kmodd.Manager).\n"
	       "  status   state, queue and counters\n"
	       "  scan     look at every device with a modalias and no driver again\n"
	       "  refresh  refresh the repositories' metadata\n"
	       "  monitor  print every event as it happens (until interrupted)\n"
	       "  handle   handle a device's modalias now, as if it had just appeared\n"
	       "Exit status: 0 ok, 1 failure (kmodd not running, or the call failed), 2 usage,\n"
	       "3 nothing provides it, 4 unsatisfiable, 5 locked.\n");
}

static int connect_error(const char *path, int r)
{
	if (r == -ENOENT || r == -ECONNREFUSED)
		log_error("kmodd is not running (nothing listens on %s); start it with 'systemctl "
			  "start kmodd' or run 'kmodd%s%s'.",
			  path, streq(arg_root, "/") ? "" : " --root ",
			  streq(arg_root, "/") ? "" : arg_root);
	else
		log_error_errno(r, "%s: cannot talk to kmodd: %m", path);
	return EXIT_FAILURE;
}

static void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int64_t jint(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static void print_status(json_object *p)
{
	json_object *c = json_object_object_get(p, "counters");

	printf("kmodd %s: %s, kernel %s%s%s\n", strna(jstr(p, "version")), strna(jstr(p, "state")),
	       strna(jstr(p, "kernel")), streq(strempty(jstr(p, "root")), "/") ? "" : ", root ",
	       streq(strempty(jstr(p, "root")), "/") ? "" : strempty(jstr(p, "root")));
	printf("  auto-install: %s; queue %" PRId64 "/%" PRId64 "; %" PRId64 " connections; peak RSS %" PRId64
	       " KiB\n",
	       strna(jstr(p, "autoInstall")), jint(p, "queued"), jint(p, "queueSize"),
	       jint(p, "connections"), jint(p, "peakRssKiB"));
	if (c)
		printf("  events %" PRId64 " (deduplicated %" PRId64 ", served %" PRId64
		       ", refused %" PRId64 ", dropped %" PRId64 "); resolved %" PRId64
		       ", installed %" PRId64 ", loaded %" PRId64 ", no match %" PRId64
		       ", failed %" PRId64 "\n",
		       jint(c, "received"), jint(c, "deduplicated"), jint(c, "served"), jint(c, "refused"),
		       jint(c, "dropped"), jint(c, "resolved"), jint(c, "installed"), jint(c, "loaded"),
		       jint(c, "noMatch"), jint(c, "failed"));
}

static void print_strv(const char *label, json_object *a)
{
	size_t n = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;

	if (n == 0)
		return;
	printf("  %s:", label);
	for (size_t i = 0; i < n; i++)
		printf(" %s", json_object_get_string(json_object_array_get_idx(a, i)));
	printf("\n");
}

/* One line per phase: what the timeline of an event says. */
static void print_job(json_object *p)
{
	json_object *t = json_object_object_get(p, "timelineMs");
	static const char *const phases[] = { "decided",   "resolved", "downloaded",
					      "installed", "indexed",  "loaded" };

	printf("%s: %s%s%s\n", jstr(p, "modalias") ?: "request", strna(jstr(p, "result")),
	       jstr(p, "message") ? " — " : "", strempty(jstr(p, "message")));
	print_strv("packages", json_object_object_get(p, "packages"));
	print_strv("modules", json_object_object_get(p, "modules"));
	print_strv("loaded", json_object_object_get(p, "loaded"));
	print_strv("problems", json_object_object_get(p, "problems"));
	if (t && json_object_object_length(t) > 1) {
		printf("  timeline: received 0 ms");
		for (size_t i = 0; i < ELEMENTSOF(phases); i++) {
			json_object *v;

			if (json_object_object_get_ex(t, phases[i], &v))
				printf(", %s +%.1f ms", phases[i], json_object_get_double(v));
		}
		printf("\n");
	}
}

static int exit_for_error(const char *error)
{
	if (streq(error, VARLINK_ERROR_NO_MATCH))
		return EXIT_NO_MATCH;
	if (streq(error, VARLINK_ERROR_UNSATISFIABLE))
		return EXIT_UNSATISFIABLE;
	if (streq(error, VARLINK_ERROR_LOCKED))
		return EXIT_LOCKED;
	return EXIT_FAILURE;
}

static int call(const char *method, json_object *params, void (*print)(json_object *p))
{
	_cleanup_free_ char *path = varlink_socket_path(arg_root);
	VarlinkReply rep = {};
	int r;

	if (!path)
		return log_oom(), EXIT_FAILURE;
	r = varlink_call_simple(path, method, params, CALL_TIMEOUT_MS, &rep);
	if (r == -ENOENT || r == -ECONNREFUSED)
		return connect_error(path, r);
	if (r < 0)
		return log_error_errno(r, "%s: %s failed: %m", path, method), EXIT_FAILURE;
	if (rep.error) {
		const char *msg = jstr(rep.parameters, "message") ?: jstr(rep.parameters, "reason");

		if (arg_json)
			print_json(rep.parameters);
		log_error("kmodd: %s%s%s", rep.error, msg ? ": " : "", strempty(msg));
		r = exit_for_error(rep.error);
		varlink_reply_done(&rep);
		return r;
	}
	if (arg_json)
		print_json(rep.parameters);
	else if (print)
		print(rep.parameters);
	varlink_reply_done(&rep);
	return 0;
}

static int monitor(void)
{
	_cleanup_free_ char *path = varlink_socket_path(arg_root), *msg = NULL;
	_cleanup_close_ int fd = -EBADF;
	VarlinkBuffer b = { .max = 16u * 1024 * 1024 };
	int r;

	if (!path)
		return log_oom(), EXIT_FAILURE;
	r = varlink_connect(path, &fd);
	if (r < 0)
		return connect_error(path, r);
	msg = varlink_format_call(VARLINK_INTERFACE ".Monitor", NULL, true, false);
	if (!msg || varlink_send(fd, msg) < 0)
		return log_error("%s: cannot send the call", path), EXIT_FAILURE;
	for (;;) {
		VarlinkReply rep = {};

		r = varlink_recv(fd, &b, -1, &rep);
		if (r < 0)
			break;
		if (rep.error) {
			log_error("kmodd: %s", rep.error);
			varlink_reply_done(&rep);
			r = -EIO;
			break;
		}
		if (arg_json)
			printf("%s\n", json_object_to_json_string_ext(rep.parameters, JSON_C_TO_STRING_PLAIN));
		else if (streq(strempty(jstr(rep.parameters, "event")), "finished"))
			print_job(rep.parameters);
		else if (streq(strempty(jstr(rep.parameters, "event")), "queued"))
			printf("%s: queued\n", strna(jstr(rep.parameters, "modalias")));
		else if (streq(strempty(jstr(rep.parameters, "event")), "subscribed"))
			print_status(rep.parameters);
		fflush(stdout);
		varlink_reply_done(&rep);
	}
	varlink_buffer_done(&b);
	if (r == -ECONNRESET)
		return 0;
	return log_error_errno(r, "%s: %m", path), EXIT_FAILURE;
}

static void print_scan(json_object *p)
{
	printf("%" PRId64 " devices without a driver, %" PRId64 " queued\n", jint(p, "devices"),
	       jint(p, "queued"));
}

static void print_message(json_object *p)
{
	printf("%s%s%s\n", strna(jstr(p, "result")), jstr(p, "message") ? ": " : "",
	       strempty(jstr(p, "message")));
}

static int daemon_verb(int argc, char *argv[], bool status_only)
{
	enum { ARG_DRY_RUN = ARG_VERB_BASE, ARG_FORCE };
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "dry-run", no_argument, NULL, ARG_DRY_RUN },
		{ "force", no_argument, NULL, ARG_FORCE },
		{},
	};
	bool dry_run = false, force = false;
	const char *cmd;
	json_object *params = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_DRY_RUN:
			dry_run = true;
			break;
		case ARG_FORCE:
			force = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (status_only) {
		if (optind != argc) {
			log_error("'kmodctl status' takes no arguments.");
			return EXIT_USAGE;
		}
		return call(VARLINK_INTERFACE ".Status", NULL, print_status);
	}
	if (optind >= argc) {
		log_error("Name a daemon command; see 'kmodctl daemon --help'.");
		return EXIT_USAGE;
	}
	cmd = argv[optind++];
	if (streq(cmd, "status") || streq(cmd, "scan") || streq(cmd, "refresh") ||
	    streq(cmd, "monitor")) {
		if (optind != argc) {
			log_error("'kmodctl daemon %s' takes no arguments.", cmd);
			return EXIT_USAGE;
		}
		if (streq(cmd, "status"))
			return call(VARLINK_INTERFACE ".Status", NULL, print_status);
		if (streq(cmd, "scan"))
			return call(VARLINK_INTERFACE ".Scan", NULL, print_scan);
		if (streq(cmd, "refresh"))
			return call(VARLINK_INTERFACE ".Refresh", NULL, print_message);
		return monitor();
	}
	params = json_object_new_object();
	if (streq(cmd, "handle")) {
		if (optind >= argc || argc - optind > 2) {
			json_object_put(params);
			log_error("'kmodctl daemon handle' takes a modalias and optionally a devpath.");
			return EXIT_USAGE;
		}
		json_object_object_add(params, "modalias", json_object_new_string(argv[optind]));
		if (optind + 1 < argc)
			json_object_object_add(params, "devpath", json_object_new_string(argv[optind + 1]));
		r = call(VARLINK_INTERFACE ".HandleModalias", params, print_job);
	} else if (streq(cmd, "ensure")) {
		if (optind + 1 != argc) {
			json_object_put(params);
			log_error("'kmodctl daemon ensure' takes one set.");
			return EXIT_USAGE;
		}
		json_object_object_add(params, "set", json_object_new_string(argv[optind]));
		if (dry_run)
			json_object_object_add(params, "dryRun", json_object_new_boolean(true));
		r = call(VARLINK_INTERFACE ".Ensure", params, print_job);
	} else if (streq(cmd, "install") || streq(cmd, "remove")) {
		json_object *a = json_object_new_array();

		if (optind >= argc) {
			json_object_put(params);
			json_object_put(a);
			log_error("'kmodctl daemon %s' needs names.", cmd);
			return EXIT_USAGE;
		}
		for (int i = optind; i < argc; i++)
			json_object_array_add(a, json_object_new_string(argv[i]));
		json_object_object_add(params, streq(cmd, "install") ? "modules" : "packages", a);
		if (dry_run)
			json_object_object_add(params, "dryRun", json_object_new_boolean(true));
		if (force && streq(cmd, "remove"))
			json_object_object_add(params, "force", json_object_new_boolean(true));
		r = call(streq(cmd, "install") ? VARLINK_INTERFACE ".Install"
					       : VARLINK_INTERFACE ".Remove",
			 params, print_job);
	} else {
		json_object_put(params);
		log_error("Unknown daemon command '%s'; see 'kmodctl daemon --help'.", cmd);
		return EXIT_USAGE;
	}
	json_object_put(params);
	return r;
}

int verb_status(int argc, char *argv[])
{
	return daemon_verb(argc, argv, true);
}

int verb_daemon(int argc, char *argv[])
{
	return daemon_verb(argc, argv, false);
}

/* For other verbs: ask a running kmodd to look at the devices again; quiet when it does not
 * run. */
int daemon_request_scan(void)
{
	_cleanup_free_ char *path = varlink_socket_path(arg_root);
	VarlinkReply rep = {};
	int r;

	if (!path)
		return -ENOMEM;
	r = varlink_call_simple(path, VARLINK_INTERFACE ".Scan", NULL, 10000, &rep);
	if (r < 0)
		return r;
	r = rep.error ? -EPERM : 0;
	varlink_reply_done(&rep);
	return r;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The manager: the event loop, the queue of device events, the worker. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "db.h"
#include "policy.h"
#include "fileio.h"
#include "kmodd-cleanup.h"
#include "log.h"
#include "manager.h"
#include "repo.h"
#include "strv.h"
#include "transaction.h"

#define MODALIAS_MAX 512
#define DEVPATH_MAX 1024
#define SCAN_DEPTH_MAX 12
#define BATCH_MAX 16

static const char *const phase_table[_PHASE_MAX] = {
	[PHASE_RECEIVED] = "received",     [PHASE_DECIDED] = "decided",
	[PHASE_RESOLVED] = "resolved",     [PHASE_DOWNLOADED] = "downloaded",
	[PHASE_INSTALLED] = "installed",   [PHASE_INDEXED] = "indexed",
	[PHASE_LOADED] = "loaded",
};

const char *phase_to_string(Phase p)
{
	return p >= 0 && p < _PHASE_MAX ? phase_table[p] : NULL;
}

static const char *const job_kind_table[_JOB_KIND_MAX] = {
	[JOB_MODALIAS] = "modalias",
	[JOB_INSTALL] = "install",
	[JOB_REMOVE] = "remove",
	[JOB_REFRESH] = "refresh",
};

usec_t now_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

usec_t now_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

static char *strstrip_newline(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '\n')
		s[--n] = 0;
	return s;
}

/* ---- jobs ---- */

Job *job_new(JobKind kind)
{
	Job *j = calloc(1, sizeof(Job));

	if (j)
		j->kind = kind;
	return j;
}

Job *job_free(Job *j)
{
	if (!j)
		return NULL;
	for (size_t i = 0; i < j->n_waiters; i++)
		connection_forget_job(j->waiters[i]);
	free(j->waiters);
	free(j->modalias);
	free(j->devpath);
	free(j->source);
	strv_free(j->needs);
	free(j->requested_by);
	free(j->set);
	free(j->message);
	strv_free(j->packages);
	strv_free(j->modules);
	strv_free(j->loaded);
	strv_free(j->load_failed);
	strv_free(j->problems);
	free(j);
	return NULL;
}

int job_add_waiter(Job *j, Connection *c)
{
	if (!GREEDY_REALLOC(j->waiters, j->allocated_waiters, j->n_waiters + 1))
		return -ENOMEM;
	j->waiters[j->n_waiters++] = c;
	return 0;
}

void job_remove_waiter(Job *j, Connection *c)
{
	for (size_t i = 0; i < j->n_waiters; i++)
		if (j->waiters[i] == c) {
			memmove(j->waiters + i, j->waiters + i + 1,
				(j->n_waiters - i - 1) * sizeof(Connection *));
			j->n_waiters--;
			return;
		}
}

static json_object *strv_to_json(char *const *l)
{
	json_object *a = json_object_new_array();

	STRV_FOREACH(s, l)
		json_object_array_add(a, json_object_new_string(*s));
	return a;
}

json_object *job_to_json(const Job *j)
{
	json_object *o = json_object_new_object(), *t = json_object_new_object();

	json_object_object_add(o, "job", json_object_new_int64(j->id));
	json_object_object_add(o, "kind", json_object_new_string(job_kind_table[j->kind]));
	if (j->modalias)
		json_object_object_add(o, "modalias", json_object_new_string(j->modalias));
	if (j->devpath)
		json_object_object_add(o, "devpath", json_object_new_string(j->devpath));
	if (j->needs)
		json_object_object_add(o, "needs", strv_to_json(j->needs));
	json_object_object_add(o, "result", json_object_new_string(j->result ?: "queued"));
	if (j->message)
		json_object_object_add(o, "message", json_object_new_string(j->message));
	json_object_object_add(o, "packages", strv_to_json(j->packages));
	json_object_object_add(o, "modules", strv_to_json(j->modules));
	json_object_object_add(o, "loaded", strv_to_json(j->loaded));
	if (j->load_failed)
		json_object_object_add(o, "loadFailed", strv_to_json(j->load_failed));
	if (j->problems)
		json_object_object_add(o, "problems", strv_to_json(j->problems));
	/* the timeline: milliseconds since received */
	json_object_object_add(t, "receivedUsec", json_object_new_int64(j->t[PHASE_RECEIVED]));
	for (Phase p = PHASE_DECIDED; p < _PHASE_MAX; p++)
		if (j->t[p] && j->t[p] >= j->t[PHASE_RECEIVED])
			json_object_object_add(
				t, phase_to_string(p),
				json_object_new_double((double)(j->t[p] - j->t[PHASE_RECEIVED]) / 1000.0));
	json_object_object_add(o, "timelineMs", t);
	return o;
}

/* ---- records ---- */

static Record *record_get(Manager *m, const char *modalias, bool create)
{
	Record *rec = hashmap_get(m->records, modalias);
	char *key;

	if (rec || !create)
		return rec;
	rec = calloc(1, sizeof(Record));
	key = strdup(modalias);
	if (!rec || !key || hashmap_put(m->records, key, rec) < 0) {
		free(rec);
		free(key);
		return NULL;
	}
	return rec;
}

/* ---- the worker ---- */

static void job_set_message(Job *j, const char *fmt, ...) _printf_(2, 3);
static void job_set_message(Job *j, const char *fmt, ...)
{
	va_list ap;

	free(j->message);
	j->message = NULL;
	va_start(ap, fmt);
	if (vasprintf(&j->message, fmt, ap) < 0)
		j->message = NULL;
	va_end(ap);
}

/* Repositories that were never refreshed are refreshed once, so that a fresh install with
 * a configured repository works without 'kmodctl repo refresh'. */
static int worker_refresh(Manager *m, bool all, Job *j)
{
	RepoConfig *configs = NULL;
	size_t n = 0;
	_cleanup_strv_free_ char **warnings = NULL, **errors = NULL;
	unsigned done = 0;
	int r;

	r = repo_configs_load(m->root, &configs, &n, &warnings);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		RepoRefreshResult res = {};
		RepoState st;

		if (!configs[i].enabled)
			continue;
		if (!all && repo_state_read(m->root, configs[i].id, &st) >= 0)
			continue;
		r = repo_refresh(m->root, &configs[i], 0, NULL, &res);
		if (r < 0) {
			char *s;

			if (asprintf(&s, "%s: %s", configs[i].id, res.error ?: strerror(-r)) >= 0)
				(void)strv_consume(&errors, s);
		} else
			done++;
		repo_refresh_result_done(&res);
	}
	repo_configs_free(configs, n);
	if (j) {
		_cleanup_free_ char *e = strv_join(errors, "; ");

		job_set_message(j, "%u repositories refreshed%s%s", done, errors ? "; failed: " : "",
				strempty(e));
		j->problems = TAKE_PTR(errors);
	}
	return 0;
}

static int worker_resolver(Manager *m)
{
	int r;

	if (m->resolver && !m->resolver_stale)
		return 0;
	m->resolver = resolver_free(m->resolver);
	m->resolver_stale = false;
	r = resolver_new(m->root, m->kver, &m->resolver);
	if (r < 0)
		return r;
	if (resolver_missing_repos(m->resolver) && *resolver_missing_repos(m->resolver)) {
		m->resolver = resolver_free(m->resolver);
		(void)worker_refresh(m, false, NULL);
		r = resolver_new(m->root, m->kver, &m->resolver);
	}
	return r;
}

static void download_progress(void *userdata, const char *what, uint64_t now, uint64_t total)
{
	Job *j = userdata;

	/* downloads report bytes; the extraction reports package names with no sizes */
	if (total > 0 || now > 0)
		j->t[PHASE_DOWNLOADED] = now_realtime();
	else if (!j->t[PHASE_DOWNLOADED])
		j->t[PHASE_DOWNLOADED] = now_realtime();
}

static usec_t timespec_usec(const struct timespec *ts)
{
	return (usec_t)ts->tv_sec * USEC_PER_SEC + ts->tv_nsec / 1000;
}

/* libkmod's messages go into ours, at debug level: kmodd reports what matters itself. */
static void kmod_log(void *data, int priority, const char *file, int line, const char *fn,
		     const char *format, va_list args)
{
	_cleanup_free_ char *msg = NULL;

	if (log_get_max_level() < LOG_DEBUG || vasprintf(&msg, format, args) < 0)
		return;
	log_debug("libkmod: %s: %s", fn, strstrip_newline(msg));
}

static int kmod_ctx_new_root(const char *root, const char *kver, struct kmod_ctx **ret)
{
	_cleanup_free_ char *dir = path_join(root, "lib/modules", kver);
	_cleanup_free_ char *c1 = path_join(root, "etc/modprobe.d"),
			    *c2 = path_join(root, "run/modprobe.d"),
			    *c3 = path_join(root, "usr/lib/modprobe.d"),
			    *c4 = path_join(root, "lib/modprobe.d");
	const char *configs[] = { c1, c2, c3, c4, NULL };
	struct kmod_ctx *ctx;

	if (!dir || !c1 || !c2 || !c3 || !c4)
		return -ENOMEM;
	ctx = kmod_new(dir, configs);
	if (!ctx)
		return -ENOMEM;
	kmod_set_log_fn(ctx, kmod_log, NULL);
	kmod_set_log_priority(ctx, log_get_max_level() >= LOG_DEBUG ? LOG_DEBUG : LOG_ERR);
	(void)kmod_load_resources(ctx);
	*ret = ctx;
	return 0;
}

/* When did the files land (the rename sets the module's ctime) and the indexes get
 * published (modules.dep.bin's mtime)? The transaction does not report its steps' times. */
static void stat_phases(Manager *m, Job *j, struct kmod_ctx *ctx)
{
	_cleanup_free_ char *dep = path_join(m->root, "lib/modules", m->kver, "modules.dep.bin");
	struct stat st;

	STRV_FOREACH(mod, j->modules) {
		_cleanup_(kmod_module_unrefp) struct kmod_module *km = NULL;
		const char *path;

		if (kmod_module_new_from_name(ctx, *mod, &km) < 0)
			continue;
		path = kmod_module_get_path(km);
		if (path && stat(path, &st) >= 0) {
			usec_t t = timespec_usec(&st.st_ctim);

			if (t > j->t[PHASE_INSTALLED])
				j->t[PHASE_INSTALLED] = t;
		}
	}
	if (dep && stat(dep, &st) >= 0)
		j->t[PHASE_INDEXED] = timespec_usec(&st.st_mtim);
}

static int worker_load(Manager *m, Job *j)
{
	_cleanup_(kmod_unrefp) struct kmod_ctx *ctx = NULL;
	int r;

	r = kmod_ctx_new_root(m->root, m->kver, &ctx);
	if (r < 0)
		return r;
	stat_phases(m, j, ctx);
	STRV_FOREACH(name, j->modules) {
		_cleanup_(kmod_module_unrefp) struct kmod_module *km = NULL;
		char *s;

		r = kmod_module_new_from_name(ctx, *name, &km);
		if (r < 0)
			continue;
		r = kmod_module_probe_insert_module(km, KMOD_PROBE_APPLY_BLACKLIST, NULL, NULL, NULL,
						    NULL);
		if (r == 0 || r == -EEXIST)
			(void)strv_extend(&j->loaded, *name);
		else if (asprintf(&s, "%s: %s", *name, r > 0 ? "blacklisted" : strerror(-r)) >= 0)
			(void)strv_consume(&j->load_failed, s);
	}
	j->t[PHASE_LOADED] = now_realtime();
	return 0;
}

static void result_packages(Job *j, const ResolveResult *res)
{
	for (size_t i = 0; i < res->n_install; i++) {
		char *s = package_ref_nevra(&res->install[i]);

		if (s)
			(void)strv_consume(&j->packages, s);
	}
	strv_free(j->modules);
	j->modules = NULL;
	STRV_FOREACH(mod, res->modules)
		(void)strv_extend(&j->modules, *mod);
}

static int txn_status(Job *j, int r, TxnReport *rep)
{
	if (r == -EWOULDBLOCK || r == -EAGAIN) {
		j->result = "locked";
		job_set_message(j, "another kmodctl or kmodd is changing this system");
	} else {
		j->result = "failed";
		job_set_message(j, "%s%s%s", rep->error_path ? rep->error_path : "",
				rep->error_path ? ": " : "", rep->error_message ?: strerror(-r));
	}
	return r;
}

/* The modules of a set that available packages provide: the needs of Ensure. */
static int set_needs(Manager *m, Job *j)
{
	_cleanup_policy_set_free_ PolicySet *set = NULL;
	_cleanup_strv_free_ char **warnings = NULL;
	Pool *pool = resolver_pool(m->resolver);
	Id p;
	int r;

	r = policy_set_load(m->root, j->set, &set, &warnings);
	if (r < 0) {
		j->result = "no-match";
		job_set_message(j, "no set '%s' in /etc/kmodd/policies or /usr/lib/kmodd/policies",
				j->set);
		return -ENOENT;
	}
	FOR_POOL_SOLVABLES(p) {
		_cleanup_strv_free_ char **mods = NULL;
		_cleanup_free_ char *path = NULL;

		if (resolver_solvable_installed(m->resolver, p) ||
		    resolver_solvable_modules(m->resolver, p, &mods) < 0 || !mods)
			continue;
		if (set->paths)
			path = resolver_solvable_tree_path(m->resolver, p);
		STRV_FOREACH(mod, mods)
			if ((policy_set_matches(set, *mod, path) ||
			     (path && policy_set_matches(set, NULL, path))) &&
			    !strv_contains(j->needs, *mod) && strv_extend(&j->needs, *mod) < 0)
				return -ENOMEM;
	}
	if (!j->needs) {
		j->result = "served";
		job_set_message(j, "every module of set '%s' the repositories offer is installed",
				j->set);
		return 0;
	}
	j->need_kind = NEED_MODULE;
	return 1;
}

/* Resolves j and applies the policy; then installs and loads, or with ret_plan stops before
 * the transaction and hands the plan over (1). */
static int worker_install(Manager *m, Job *j, ResolveResult *ret_plan)
{
	_cleanup_strv_free_ char **watchdogs = NULL, **bl_warnings = NULL;
	ResolveResult res = {};
	BlacklistPolicy policy = {};
	TxnReport rep = {};
	TxnOptions o = {
		.dry_run = j->dry_run,
		.load = false,
		.require_signature = m->config.require_signature,
		.progress = download_progress,
		.userdata = j,
	};
	_cleanup_free_ char *command = NULL;
	char *one[2] = { j->modalias, NULL };
	NeedKind kind = j->kind == JOB_MODALIAS ? NEED_MODALIAS : j->need_kind;
	int r;

	r = worker_resolver(m);
	if (r < 0) {
		j->result = "failed";
		job_set_message(j, "cannot read the installed state or the repositories of %s: %s",
				m->kver, strerror(-r));
		return r;
	}
	if (j->set) {
		r = set_needs(m, j);
		if (r <= 0)
			return r;
		kind = NEED_MODULE;
		(void)resolver_set_requested_by(m->resolver, j->requested_by);
	} else
		(void)resolver_set_requested_by(m->resolver, NULL);
	r = resolver_solve(m->resolver, kind, j->kind == JOB_MODALIAS ? one : j->needs,
			   j->kind == JOB_MODALIAS ? INSTALL_REASON_HOTPLUG
			   : j->set		   ? INSTALL_REASON_SET
						   : INSTALL_REASON_USER,
			   j->kind == JOB_MODALIAS ? (j->devpath ?: j->modalias) : NULL, &res);
	j->t[PHASE_RESOLVED] = now_realtime();
	if (r == -ENOENT) {
		j->result = "no-match";
		j->problems = TAKE_PTR(res.problems);
		job_set_message(j, "no repository offers a module for it");
		goto finish;
	}
	if (r == -EDEADLK) {
		j->result = "unsatisfiable";
		j->problems = TAKE_PTR(res.problems);
		job_set_message(j, "cannot be satisfied: %s",
				j->problems && j->problems[0] ? j->problems[0] : "dependency problem");
		goto finish;
	}
	if (r < 0) {
		j->result = "failed";
		job_set_message(j, "resolution failed: %s", strerror(-r));
		goto finish;
	}
	result_packages(j, &res);
	if (res.already || res.n_install == 0) {
		/* installed (as another package's dependency, or by hand) but nobody loaded it
		 * for this device: do what udev would have done */
		j->result = "served";
		job_set_message(j, "installed modules serve it already");
		if (j->kind == JOB_MODALIAS && !j->dry_run)
			(void)worker_load(m, j);
		r = 0;
		goto finish;
	}

	/* policy on what would be installed: the watchdog blacklist and DeniedModules */
	if (blacklist_policy_load(m->root, &policy, &bl_warnings) >= 0 &&
	    blacklist_watchdog_modules(m->root, m->kver, &policy, &watchdogs) >= 0)
		STRV_FOREACH(mod, j->modules)
			if (blacklist_contains(watchdogs, &policy, *mod) && j->kind == JOB_MODALIAS) {
				j->result = "blacklisted";
				job_set_message(j, "%s is a watchdog driver and blacklisted; allow it "
						   "with 'kmodctl watchdog allow %s'",
						*mod, *mod);
				r = 0;
				goto finish;
			}
	STRV_FOREACH(mod, j->modules)
		if (j->kind == JOB_MODALIAS && daemon_config_module_denied(&m->config, *mod)) {
			j->result = "refused";
			job_set_message(j, "%s is in DeniedModules=", *mod);
			r = 0;
			goto finish;
		}
	if (j->kind == JOB_MODALIAS && m->config.auto_install == AUTO_INSTALL_NOTIFY_ONLY)
		j->dry_run = o.dry_run = true;
	if (j->dry_run) {
		j->result = "would-install";
		job_set_message(j, "would install %zu package(s)", res.n_install);
		r = 0;
		goto finish;
	}

	if (ret_plan) {
		*ret_plan = res;
		res = (ResolveResult){};
		r = 1;
		goto finish;
	}

	if (j->kind == JOB_MODALIAS)
		r = asprintf(&command, "hotplug %s", j->modalias);
	else {
		_cleanup_free_ char *s = strv_join(j->needs, " ");

		r = asprintf(&command, "install %s", strempty(s));
	}
	if (r < 0) {
		r = -ENOMEM;
		goto finish;
	}
	o.command = command;
	r = transaction_install(m->root, m->kver, res.install, res.n_install, NULL, &o, &rep);
	m->resolver_stale = true;
	if (r >= 0)
		__atomic_add_fetch(&m->counters.transactions, 1, __ATOMIC_RELAXED);
	if (r < 0) {
		txn_status(j, r, &rep);
		goto finish;
	}
	if (!j->t[PHASE_DOWNLOADED])
		j->t[PHASE_DOWNLOADED] = j->t[PHASE_RESOLVED];
	strv_free(j->packages);
	j->packages = TAKE_PTR(rep.installed);
	if (!j->set) /* a set says what may be needed, not what is: installed, not loaded */
		r = worker_load(m, j);
	j->result = "installed";
	job_set_message(j, "installed %zu package(s), loaded %zu module(s)", strv_length(j->packages),
			strv_length(j->loaded));
	r = 0;
finish:
	resolve_result_done(&res);
	txn_report_done(&rep);
	blacklist_policy_done(&policy);
	return r;
}

static int worker_remove(Manager *m, Job *j)
{
	TxnReport rep = {};
	TxnOptions o = { .dry_run = j->dry_run, .force = j->force, .command = "remove" };
	int r;

	r = transaction_remove(m->root, m->kver, j->needs, &o, &rep);
	m->resolver_stale = true;
	if (r == -ENOENT) {
		j->result = "no-match";
		job_set_message(j, "%s", rep.error_message ?: "not installed");
	} else if (r < 0)
		txn_status(j, r, &rep);
	else {
		j->result = "removed";
		j->packages = TAKE_PTR(rep.removed);
		job_set_message(j, "removed %zu package(s)", strv_length(j->packages));
	}
	txn_report_done(&rep);
	return r;
}

static bool package_in(const PackageRef *l, size_t n, const PackageRef *p)
{
	for (size_t i = 0; i < n; i++)
		if (streq(l[i].name, p->name) && streq_ptr(l[i].evr, p->evr) &&
		    streq_ptr(l[i].arch, p->arch))
			return true;
	return false;
}

/* Several queued devices: each resolved and checked on its own, what they need installed in
 * one transaction (one download pass, one depmod, one commit), then each one's modules
 * loaded. When that transaction fails, each device is handled on its own instead, so that one
 * bad package spoils only its device. */
static void worker_batch(Manager *m, Job *first)
{
	ResolveResult plans[BATCH_MAX] = {};
	Job *jobs[BATCH_MAX];
	PackageRef *all = NULL;
	size_t n = 0, n_all = 0, allocated = 0;
	TxnReport rep = {};
	_cleanup_free_ char *command = NULL;
	int r;

	for (Job *b = first; b; b = b->batch_next) {
		ResolveResult plan = {};

		b->r = worker_install(m, b, n < BATCH_MAX ? &plan : NULL);
		if (b->r == 1) {
			jobs[n] = b;
			plans[n++] = plan;
		}
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < plans[i].n_install; k++) {
			if (package_in(all, n_all, &plans[i].install[k]))
				continue;
			if (!GREEDY_REALLOC(all, allocated, n_all + 1) ||
			    package_ref_copy(&plans[i].install[k], &all[n_all]) < 0) {
				r = -ENOMEM;
				goto each;
			}
			n_all++;
		}
	if (n == 0)
		goto done;
	{
		TxnOptions o = {
			.require_signature = m->config.require_signature,
			.progress = download_progress,
			.userdata = jobs[0],
		};

		if (asprintf(&command, "hotplug of %zu devices", n) < 0) {
			r = -ENOMEM;
			goto each;
		}
		o.command = command;
		r = transaction_install(m->root, m->kver, all, n_all, NULL, &o, &rep);
		m->resolver_stale = true;
		if (r >= 0)
			__atomic_add_fetch(&m->counters.transactions, 1, __ATOMIC_RELAXED);
	}
each:
	for (size_t i = 0; i < n; i++) {
		Job *j = jobs[i];

		if (r < 0) {
			/* on its own, against the state the failed transaction left (none) */
			j->packages = strv_free(j->packages);
			j->r = worker_install(m, j, NULL);
			continue;
		}
		j->t[PHASE_DOWNLOADED] = jobs[0]->t[PHASE_DOWNLOADED] ?: j->t[PHASE_RESOLVED];
		(void)worker_load(m, j);
		j->r = 0;
		j->result = "installed";
		job_set_message(j, "installed %zu package(s) (in one transaction with %zu other "
				   "device(s)), loaded %zu module(s)",
				strv_length(j->packages), n - 1, strv_length(j->loaded));
	}
done:
	for (size_t i = 0; i < n; i++)
		resolve_result_done(&plans[i]);
	for (size_t i = 0; i < n_all; i++)
		package_ref_done(&all[i]);
	free(all);
	txn_report_done(&rep);
	for (Job *b = first; b; b = b->batch_next)
		if (!b->result)
			b->result = b->r < 0 ? "failed" : "done";
}

static void *worker_main(void *userdata)
{
	Manager *m = userdata;
	Job *j = m->running;
	uint64_t one = 1;

	switch (j->kind) {
	case JOB_MODALIAS:
		if (j->batch_next)
			worker_batch(m, j);
		else
			j->r = worker_install(m, j, NULL);
		break;
	case JOB_INSTALL:
		j->r = worker_install(m, j, NULL);
		break;
	case JOB_REMOVE:
		j->r = worker_remove(m, j);
		break;
	case JOB_REFRESH:
		j->r = worker_refresh(m, true, j);
		m->resolver_stale = true;
		j->result = j->r < 0 ? "failed" : "refreshed";
		break;
	case _JOB_KIND_MAX:
	case _JOB_KIND_INVALID:
		j->r = -EINVAL;
		break;
	}
	if (!j->result)
		j->result = j->r < 0 ? "failed" : "done";
	if (write(m->worker_efd, &one, sizeof(one)) < 0)
		log_debug("worker: cannot signal completion: %m");
	return NULL;
}

static void manager_notify_status(Manager *m)
{
	if (m->stopping)
		return;
	if (m->running)
		(void)sd_notifyf(false, "STATUS=Working on %s (%u queued)",
				 m->running->modalias ?: job_kind_table[m->running->kind],
				 m->queue_len);
	else
		(void)sd_notifyf(false, "STATUS=Idle; %" PRIu64 " events, %" PRIu64 " installs",
				 m->counters.received, m->counters.installed);
}

static void manager_start_next(Manager *m)
{
	Job *j;
	int r;

	if (m->running || !m->queue_head || m->exit_requested)
		return;
	j = m->queue_head;
	m->queue_head = j->next;
	m->queue_len--;
	j->next = NULL;
	/* device events waiting behind each other go together (one transaction) */
	if (j->kind == JOB_MODALIAS) {
		Job *last = j;
		unsigned n = 1;

		while (n < BATCH_MAX && m->queue_head && m->queue_head->kind == JOB_MODALIAS) {
			last->batch_next = m->queue_head;
			last = m->queue_head;
			m->queue_head = last->next;
			last->next = NULL;
			m->queue_len--;
			n++;
		}
	}
	if (!m->queue_head)
		m->queue_tail = NULL;
	m->running = j;
	for (Job *b = j; b; b = b->batch_next)
		if (b->modalias) {
			Record *rec = record_get(m, b->modalias, false);

			if (rec)
				rec->state = RECORD_RUNNING;
		}
	m->counters.jobs++;
	r = pthread_create(&m->worker, NULL, worker_main, m);
	if (r != 0) {
		log_error_errno(-r, "Cannot start the worker thread: %m");
		j->r = -r;
		j->result = "failed";
		m->running = NULL;
		job_free(j);
		return;
	}
	(void)sd_event_source_set_enabled(m->idle_timer, SD_EVENT_OFF);
	manager_notify_status(m);
}

static void timeline_string(const Job *j, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = 0;
	for (Phase p = PHASE_DECIDED; p < _PHASE_MAX; p++) {
		if (!j->t[p] || j->t[p] < j->t[PHASE_RECEIVED])
			continue;
		n += snprintf(buf + n, n < size ? size - n : 0, "%s%s +%.1f ms", n ? ", " : "",
			      phase_to_string(p), (double)(j->t[p] - j->t[PHASE_RECEIVED]) / 1000.0);
		if (n >= size)
			break;
	}
}

static void job_complete(Manager *m, Job *j)
{
	Record *rec = j->modalias ? record_get(m, j->modalias, false) : NULL;
	_cleanup_free_ char *pkgs = strv_join(j->packages, " "), *mods = strv_join(j->modules, " ");
	char tl[512];

	timeline_string(j, tl, sizeof(tl));
	if (j->kind == JOB_MODALIAS || j->kind == JOB_INSTALL) {
		if (j->t[PHASE_RESOLVED])
			m->counters.resolved++;
		if (j->t[PHASE_RESOLVED] && (streq(j->result, "installed") || streq(j->result, "served") ||
					     streq(j->result, "would-install")))
			manager_log_event(m, EVENT_RESOLVED, j, "%s: resolved to %s",
					  j->modalias ?: "request", isempty(pkgs) ? "(installed)" : pkgs);
	}
	if (streq(j->result, "installed")) {
		m->counters.installed++;
		m->counters.loaded += strv_length(j->loaded);
		manager_log_event(m, EVENT_INSTALLED, j, "%s: installed %s", j->modalias ?: "request",
				  strempty(pkgs));
		if (j->loaded) {
			_cleanup_free_ char *l = strv_join(j->loaded, " ");

			manager_log_event(m, EVENT_LOADED, j, "%s: loaded %s; timeline: %s",
					  j->modalias ?: "request", strempty(l), tl);
		}
		if (j->load_failed) {
			_cleanup_free_ char *l = strv_join(j->load_failed, "; ");

			manager_log_event(m, EVENT_FAILED, j, "%s: loading failed: %s",
					  j->modalias ?: "request", strempty(l));
		}
		if (m->kmod)
			m->kmod = kmod_unref(m->kmod); /* the indexes changed */
	} else if (streq(j->result, "blacklisted") || streq(j->result, "refused")) {
		m->counters.refused++;
		manager_log_event(m, EVENT_REFUSED, j, "%s: not installing %s: %s",
				  j->modalias ?: "request", strempty(mods), strempty(j->message));
	} else if (streq(j->result, "no-match")) {
		m->counters.no_match++;
		manager_log_event(m, EVENT_FAILED, j, "%s: %s", j->modalias ?: "request",
				  strempty(j->message));
	} else if (streq(j->result, "served") || streq(j->result, "would-install") ||
		   streq(j->result, "removed") || streq(j->result, "refreshed")) {
		if (streq(j->result, "removed") && m->kmod)
			m->kmod = kmod_unref(m->kmod);
		manager_log_event(m, EVENT_RESOLVED, j, "%s: %s", j->modalias ?: job_kind_table[j->kind],
				  strempty(j->message));
	} else {
		m->counters.failed++;
		manager_log_event(m, EVENT_FAILED, j, "%s: %s: %s", j->modalias ?: job_kind_table[j->kind],
				  j->result, strempty(j->message));
	}

	if (rec) {
		rec->job = NULL;
		rec->last_result = j->result;
		if (streq(j->result, "no-match") && m->config.negative_cache_sec > 0) {
			rec->state = RECORD_NEGATIVE;
			rec->expires = now_monotonic() + m->config.negative_cache_sec * USEC_PER_SEC;
		} else
			rec->state = RECORD_DONE;
	}
	if (j->kind == JOB_REFRESH) {
		/* new metadata: forget what was not found */
		const char *k;
		Record *r;

		HASHMAP_FOREACH_KEY(r, k, m->records)
			if (r->state == RECORD_NEGATIVE)
				r->state = RECORD_DONE;
	}

	/* answer everyone who waited, then the monitors */
	for (size_t i = 0; i < j->n_waiters; i++)
		connection_reply_job(j->waiters[i], j);
	j->n_waiters = 0;
	{
		json_object *ev = job_to_json(j);

		json_object_object_add(ev, "event", json_object_new_string("finished"));
		manager_broadcast(m, ev);
		json_object_put(ev);
	}
	job_free(j);
}

static void manager_reload(Manager *m);

static int on_worker_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	Manager *m = userdata;
	uint64_t v;
	Job *j;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("worker: eventfd: %m");
	if (!m->running)
		return 0;
	pthread_join(m->worker, NULL);
	j = TAKE_PTR(m->running);
	while (j) {
		Job *next = j->batch_next;

		job_complete(m, j);
		j = next;
	}

	if (m->exit_requested) {
		(void)sd_event_exit(m->event, 0);
		return 0;
	}
	if (m->reload_pending)
		manager_reload(m);
	if (m->rescan_pending && m->queue_len == 0)
		manager_schedule_rescan(m);
	manager_start_next(m);
	manager_notify_status(m);
	manager_check_idle(m);
	return 0;
}

int manager_enqueue(Manager *m, Job *j)
{
	if (m->stopping) {
		job_free(j);
		return -ESHUTDOWN;
	}
	j->id = ++m->next_job_id;
	if (!j->t[PHASE_RECEIVED])
		j->t[PHASE_RECEIVED] = now_realtime();
	if (m->queue_tail)
		m->queue_tail->next = j;
	else
		m->queue_head = j;
	m->queue_tail = j;
	m->queue_len++;
	manager_start_next(m);
	return 0;
}

/* ---- device events ---- */

static bool modalias_valid(const char *s)
{
	size_t n = 0;

	if (!s || !strchr(s, ':') || s[0] == ':')
		return false;
	for (; *s; s++, n++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return n <= MODALIAS_MAX;
}

/* Is the modalias served by a module of the tree (modules.alias, built-in aliases)? */
static int modalias_served(Manager *m, const char *modalias, char ***ret_modules)
{
	_cleanup_(kmod_module_unref_listp) struct kmod_list *list = NULL;
	struct kmod_list *it;
	int r;

	if (m->kmod && kmod_validate_resources(m->kmod) != KMOD_RESOURCES_OK)
		m->kmod = kmod_unref(m->kmod);
	if (!m->kmod) {
		r = kmod_ctx_new_root(m->root, m->kver, &m->kmod);
		if (r < 0)
			return r;
	}
	r = kmod_module_new_from_lookup(m->kmod, modalias, &list);
	if (r < 0)
		return r;
	kmod_list_foreach(it, list) {
		_cleanup_(kmod_module_unrefp) struct kmod_module *km = kmod_module_get_module(it);

		(void)strv_extend(ret_modules, kmod_module_get_name(km));
	}
	return list ? 1 : 0;
}

static void reply_now(Manager *m, Job *j, Connection *waiter)
{
	if (waiter)
		connection_reply_job(waiter, j);
	job_free(j);
}

int manager_handle_modalias(Manager *m, const char *modalias, const char *devpath,
			    const char *source, Connection *waiter)
{
	_cleanup_strv_free_ char **served = NULL;
	char why[128];
	const char *reason;
	Record *rec;
	Job *j;
	int r;

	if (!modalias_valid(modalias) || (devpath && strlen(devpath) > DEVPATH_MAX))
		return -EINVAL;
	if (m->stopping)
		return -ESHUTDOWN; /* the next start-up scan finds the device */
	m->counters.received++;

	rec = record_get(m, modalias, true);
	if (!rec)
		return -ENOMEM;
	if ((rec->state == RECORD_QUEUED || rec->state == RECORD_RUNNING) && rec->job) {
		m->counters.deduplicated++;
		if (waiter)
			return job_add_waiter(rec->job, waiter);
		return 0;
	}

	j = job_new(JOB_MODALIAS);
	if (!j)
		return -ENOMEM;
	j->t[PHASE_RECEIVED] = now_realtime();
	j->modalias = strdup(modalias);
	j->devpath = devpath ? strdup(devpath) : NULL;
	j->source = strdup(source);
	if (!j->modalias || (devpath && !j->devpath) || !j->source) {
		job_free(j);
		return -ENOMEM;
	}
	manager_log_event(m, EVENT_SEEN, j, "%s: device seen (%s%s%s)", modalias, source,
			  devpath ? " " : "", strempty(devpath));

	if (rec->state == RECORD_NEGATIVE && now_monotonic() < rec->expires) {
		m->counters.negative_hits++;
		j->t[PHASE_DECIDED] = now_realtime();
		j->result = "no-match";
		job_set_message(j, "no repository offered a module for it (cached)");
		reply_now(m, j, waiter);
		return 0;
	}

	r = modalias_served(m, modalias, &served);
	if (r > 0) {
		m->counters.served++;
		j->t[PHASE_DECIDED] = now_realtime();
		j->result = "served";
		j->modules = TAKE_PTR(served);
		job_set_message(j, "an installed module serves it");
		rec->state = RECORD_DONE;
		rec->last_result = "served";
		reply_now(m, j, waiter);
		return 0;
	}

	reason = m->config.auto_install == AUTO_INSTALL_OFF
			 ? "AutoInstall=off"
			 : daemon_config_check_modalias(&m->config, modalias, why, sizeof(why));
	if (reason) {
		m->counters.refused++;
		j->t[PHASE_DECIDED] = now_realtime();
		j->result = "refused";
		job_set_message(j, "%s", reason);
		manager_log_event(m, EVENT_REFUSED, j, "%s: not installing: %s", modalias, reason);
		rec->state = RECORD_DONE;
		rec->last_result = "refused";
		reply_now(m, j, waiter);
		return 0;
	}

	if (m->queue_len >= m->config.queue_size) {
		/* the rescan after the queue drains catches the device */
		m->counters.dropped++;
		m->rescan_pending = true;
		j->result = "dropped";
		job_set_message(j, "the queue is full; the device will be picked up by a rescan");
		reply_now(m, j, waiter);
		return 0;
	}
	j->t[PHASE_DECIDED] = now_realtime();
	if (waiter) {
		r = job_add_waiter(j, waiter);
		if (r < 0) {
			job_free(j);
			return r;
		}
	}
	rec->state = RECORD_QUEUED;
	rec->job = j;
	{
		json_object *ev = job_to_json(j);

		json_object_object_add(ev, "event", json_object_new_string("queued"));
		manager_broadcast(m, ev);
		json_object_put(ev);
	}
	return manager_enqueue(m, j);
}

/* ---- coldplug scan ---- */

static int read_small(int dirfd, const char *name, char *buf, size_t size)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return negative_errno();
	n = read(fd, buf, size - 1);
	if (n < 0)
		return negative_errno();
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == 0))
		n--;
	buf[n] = 0;
	return (int)n;
}

static int scan_dir(Manager *m, int dirfd, const char *rel, unsigned depth, unsigned *devices,
		    unsigned *queued)
{
	char modalias[MODALIAS_MAX + 2];
	struct stat st;
	DIR *d;
	struct dirent *de;
	int fd;

	if (depth > SCAN_DEPTH_MAX)
		return 0;
	fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	if (read_small(fd, "modalias", modalias, sizeof(modalias)) > 0 &&
	    fstatat(fd, "driver", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT &&
	    modalias_valid(modalias)) {
		unsigned before = m->queue_len;
		_cleanup_free_ char *devpath = NULL;

		(*devices)++;
		if (asprintf(&devpath, "/%s", rel) >= 0)
			(void)manager_handle_modalias(m, modalias, devpath, "coldplug", NULL);
		if (m->queue_len > before)
			(*queued)++;
	}
	d = fdopendir(fd);
	if (!d) {
		safe_close(fd);
		return 0;
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *sub = NULL;

		/* real directories only: sysfs links (subsystem, driver, device...) would loop */
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (asprintf(&sub, "%s/%s", rel, de->d_name) < 0)
			break;
		scan_dir(m, dirfd, sub, depth + 1, devices, queued);
	}
	closedir(d);
	return 0;
}

int manager_scan(Manager *m, unsigned *ret_devices, unsigned *ret_queued)
{
	_cleanup_free_ char *sys = path_join(m->root, "sys");
	_cleanup_close_ int fd = -EBADF;
	unsigned devices = 0, queued = 0;

	if (!sys)
		return -ENOMEM;
	m->counters.rescans++;
	fd = open(sys, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	scan_dir(m, fd, "devices", 0, &devices, &queued);
	log_debug("scan of %s: %u devices without a driver, %u queued", sys, devices, queued);
	if (ret_devices)
		*ret_devices = devices;
	if (ret_queued)
		*ret_queued = queued;
	return 0;
}

static int on_rescan(sd_event_source *s, void *userdata)
{
	Manager *m = userdata;

	m->rescan_pending = false;
	(void)manager_scan(m, NULL, NULL);
	return 0;
}

void manager_schedule_rescan(Manager *m)
{
	m->rescan_pending = true;
	if (m->queue_len > 0 && m->queue_len >= m->config.queue_size)
		return; /* after the queue drains */
	(void)sd_event_source_set_enabled(m->rescan_source, SD_EVENT_ONESHOT);
}

/* ---- idle exit ---- */

void manager_check_idle(Manager *m)
{
	bool idle = !m->running && m->queue_len == 0 && m->n_connections == 0;

	if (!m->socket_activated || m->config.idle_exit_sec == 0 || !m->idle_timer)
		return;
	if (!idle) {
		(void)sd_event_source_set_enabled(m->idle_timer, SD_EVENT_OFF);
		return;
	}
	(void)sd_event_source_set_time_relative(m->idle_timer,
						(uint64_t)m->config.idle_exit_sec * USEC_PER_SEC);
	(void)sd_event_source_set_enabled(m->idle_timer, SD_EVENT_ONESHOT);
}

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata)
{
	Manager *m = userdata;

	if (m->running || m->queue_len > 0 || m->n_connections > 0)
		return 0;
	log_info("Idle for %us, exiting; the socket starts kmodd again when needed.",
		 m->config.idle_exit_sec);
	(void)sd_notify(false, "STOPPING=1\nSTATUS=Idle, exiting");
	m->stopping = true;
	return sd_event_exit(m->event, 0);
}

/* ---- signals ---- */

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	Manager *m = userdata;

	if (m->stopping && m->running) {
		log_warning("Second termination signal: exiting in the middle of a transaction; "
			    "it is rolled back when kmodd or kmodctl starts next.");
		_exit(1);
	}
	m->stopping = true;
	(void)sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
	/* queued events are dropped: the start-up scan of the next run finds those devices */
	while (m->queue_head) {
		Job *j = m->queue_head;

		m->queue_head = j->next;
		j->result = "cancelled";
		job_set_message(j, "kmodd is shutting down");
		for (size_t i = 0; i < j->n_waiters; i++)
			connection_reply_job(j->waiters[i], j);
		j->n_waiters = 0;
		if (j->modalias) {
			Record *rec = record_get(m, j->modalias, false);

			if (rec) {
				rec->job = NULL;
				rec->state = RECORD_DONE;
			}
		}
		job_free(j);
	}
	m->queue_tail = NULL;
	m->queue_len = 0;
	if (m->running) {
		log_info("Stopping after the current transaction (%s).",
			 m->running->modalias ?: job_kind_table[m->running->kind]);
		m->exit_requested = true;
		return 0;
	}
	return sd_event_exit(m->event, 0);
}

static void manager_reload(Manager *m)
{
	_cleanup_strv_free_ char **warnings = NULL;
	DaemonConfig c;

	m->reload_pending = false;
	if (daemon_config_load(&c, m->root, &warnings) < 0) {
		daemon_config_done(&c);
		log_warning("Cannot reread the configuration, keeping the old one.");
		return;
	}
	STRV_FOREACH(w, warnings)
		log_warning("%s", *w);
	daemon_config_done(&m->config);
	m->config = c;
	log_info("Configuration reloaded.");
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	Manager *m = userdata;

	/* the worker reads the configuration: swap it only between jobs */
	if (m->running)
		m->reload_pending = true;
	else
		manager_reload(m);
	return 0;
}

/* ---- status ---- */

static long peak_rss_kib(void)
{
	_cleanup_free_ char *text = NULL;
	const char *p;

	if (read_full_file("/proc/self/status", 0, &text, NULL) < 0)
		return -1;
	p = strstr(text, "VmHWM:");
	return p ? strtol(p + 6, NULL, 10) : -1;
}

json_object *manager_status_json(Manager *m)
{
	json_object *o = json_object_new_object(), *c = json_object_new_object();
	unsigned negative = 0;
	const char *k;
	Record *r;

	HASHMAP_FOREACH_KEY(r, k, m->records)
		if (r->state == RECORD_NEGATIVE)
			negative++;
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "root", json_object_new_string(m->root));
	json_object_object_add(o, "kernel", json_object_new_string(m->kver));
	json_object_object_add(o, "state", json_object_new_string(m->stopping ? "stopping"
								  : m->running ? "busy"
									       : "idle"));
	json_object_object_add(o, "autoInstall", json_object_new_string(auto_install_mode_to_string(
							 m->config.auto_install)));
	json_object_object_add(o, "running", m->running ? job_to_json(m->running) : NULL);
	json_object_object_add(o, "queued", json_object_new_int64(m->queue_len));
	json_object_object_add(o, "queueSize", json_object_new_int64(m->config.queue_size));
	json_object_object_add(o, "devicesKnown", json_object_new_int64(hashmap_size(m->records)));
	json_object_object_add(o, "negativeCache", json_object_new_int64(negative));
	json_object_object_add(o, "connections", json_object_new_int64(m->n_connections));
	json_object_object_add(o, "socketActivated", json_object_new_boolean(m->socket_activated));
	json_object_object_add(o, "udev", json_object_new_boolean(m->monitor != NULL));
	json_object_object_add(o, "uptimeSec",
			       json_object_new_double((double)(now_monotonic() - m->started) / 1e6));
	json_object_object_add(o, "peakRssKiB", json_object_new_int64(peak_rss_kib()));
#define C(name, field) json_object_object_add(c, name, json_object_new_int64(m->counters.field))
	C("received", received);
	C("deduplicated", deduplicated);
	C("served", served);
	C("negativeHits", negative_hits);
	C("refused", refused);
	C("resolved", resolved);
	C("installed", installed);
	json_object_object_add(c, "transactions", json_object_new_int64(__atomic_load_n(
							  &m->counters.transactions, __ATOMIC_RELAXED)));
	C("loaded", loaded);
	C("noMatch", no_match);
	C("failed", failed);
	C("dropped", dropped);
	C("rescans", rescans);
	C("enobufs", enobufs);
	C("jobs", jobs);
	C("protocolErrors", protocol_errors);
	C("denied", denied);
#undef C
	json_object_object_add(o, "counters", c);
	return o;
}

void manager_broadcast(Manager *m, json_object *event)
{
	for (Connection *c = m->connections; c; c = connection_next(c))
		if (connection_is_monitor(c))
			connection_send_event(c, event);
}

/* ---- life cycle ---- */

static void record_free(void *p)
{
	free(p);
}

int manager_new(const char *root, const char *kver, Manager **ret)
{
	_cleanup_(manager_freep) Manager *m = NULL;
	_cleanup_strv_free_ char **warnings = NULL;
	int r;

	m = calloc(1, sizeof(Manager));
	if (!m)
		return -ENOMEM;
	m->listen_fd = -EBADF;
	m->worker_efd = -EBADF;
	m->root = strdup(root);
	m->kver = strdup(kver);
	m->records = hashmap_new(free, record_free);
	if (!m->root || !m->kver || !m->records)
		return -ENOMEM;
	r = daemon_config_load(&m->config, root, &warnings);
	if (r < 0)
		return log_error_errno(r, "Cannot read the configuration under %s/etc/kmodd: %m", root);
	STRV_FOREACH(w, warnings)
		log_warning("%s", *w);
	*ret = TAKE_PTR(m);
	return 0;
}

Manager *manager_free(Manager *m)
{
	if (!m)
		return NULL;
	if (m->running) {
		Job *j;

		pthread_join(m->worker, NULL);
		j = TAKE_PTR(m->running);
		while (j) {
			Job *next = j->batch_next;

			job_free(j);
			j = next;
		}
	}
	while (m->queue_head) {
		Job *j = m->queue_head;

		m->queue_head = j->next;
		job_free(j);
	}
	manager_close_connections(m);
	sd_event_source_unref(m->listen_source);
	safe_close(m->listen_fd);
	if (m->socket_path)
		(void)unlink(m->socket_path);
	free(m->socket_path);
	sd_event_source_unref(m->monitor_source);
	udev_monitor_unref(m->monitor);
	udev_unref(m->udev);
	sd_event_source_unref(m->worker_source);
	safe_close(m->worker_efd);
	sd_event_source_unref(m->sigterm);
	sd_event_source_unref(m->sigint);
	sd_event_source_unref(m->sighup);
	sd_event_source_unref(m->idle_timer);
	sd_event_source_unref(m->rescan_source);
	sd_event_unref(m->event);
	resolver_free(m->resolver);
	kmod_unref(m->kmod);
	hashmap_free(m->records);
	daemon_config_done(&m->config);
	free(m->root);
	free(m->kver);
	free(m);
	return NULL;
}

static int write_blacklist(Manager *m)
{
	_cleanup_strv_free_ char **warnings = NULL;
	BlacklistPolicy p = {};
	size_t n = 0;
	int r;

	r = blacklist_policy_load(m->root, &p, &warnings);
	if (r < 0)
		return r;
	STRV_FOREACH(w, warnings)
		log_warning("%s", *w);
	r = blacklist_write(m->root, "run/modprobe.d", &p, &n);
	if (r < 0)
		log_warning_errno(r, "Cannot write %s/run/modprobe.d/%s: %m; watchdog drivers are "
				     "still refused by kmodd itself, ignoring",
				  streq(m->root, "/") ? "" : m->root, BLACKLIST_MODPROBE_FILE);
	else
		log_debug("watchdog blacklist: %zu modules%s%s", n, p.allow ? ", allowed: " : "",
			  strempty(p.allow));
	blacklist_policy_done(&p);
	return 0;
}

int manager_start(Manager *m)
{
	sigset_t mask;
	unsigned devices = 0, queued = 0;
	TxnReport rep = {};
	int r;

	m->started = now_monotonic();
	r = sd_event_default(&m->event);
	if (r < 0)
		return log_error_errno(r, "Cannot create the event loop: %m");

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((r = sd_event_add_signal(m->event, &m->sigterm, SIGTERM, on_term, m)) < 0 ||
	    (r = sd_event_add_signal(m->event, &m->sigint, SIGINT, on_term, m)) < 0 ||
	    (r = sd_event_add_signal(m->event, &m->sighup, SIGHUP, on_hup, m)) < 0)
		return log_error_errno(r, "Cannot watch signals: %m");
	(void)sd_event_source_set_description(m->sigterm, "sigterm");
	(void)sd_event_source_set_description(m->sigint, "sigint");
	(void)sd_event_source_set_description(m->sighup, "sighup");

	m->worker_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->worker_efd < 0)
		return log_error_errno(negative_errno(), "Cannot create an eventfd: %m");
	r = sd_event_add_io(m->event, &m->worker_source, m->worker_efd, EPOLLIN, on_worker_done, m);
	if (r < 0)
		return log_error_errno(r, "Cannot watch the worker: %m");
	(void)sd_event_source_set_description(m->worker_source, "worker");

	r = sd_event_add_defer(m->event, &m->rescan_source, on_rescan, m);
	if (r < 0)
		return log_error_errno(r, "Cannot create the rescan source: %m");
	(void)sd_event_source_set_enabled(m->rescan_source, SD_EVENT_OFF);
	(void)sd_event_source_set_description(m->rescan_source, "rescan");

	r = sd_event_add_time_relative(m->event, &m->idle_timer, CLOCK_MONOTONIC, USEC_PER_SEC,
				       USEC_PER_SEC, on_idle, m);
	if (r < 0)
		return log_error_errno(r, "Cannot create the idle timer: %m");
	(void)sd_event_source_set_enabled(m->idle_timer, SD_EVENT_OFF);
	(void)sd_event_source_set_description(m->idle_timer, "idle-exit");

	/* an interrupted transaction of an earlier run is finished or rolled back first */
	r = transaction_recover(m->root, m->kver, &rep);
	if (r > 0)
		log_notice("Recovered an interrupted transaction: %s.",
			   strna(rep.recovery_action));
	else if (r < 0 && r != -ENOENT)
		log_warning_errno(r, "Recovery of an interrupted transaction failed: %s; run 'kmodctl "
				     "recover', ignoring",
				  rep.error_message ?: strerror(-r));
	txn_report_done(&rep);

	(void)write_blacklist(m);

	r = manager_open_control(m);
	if (r < 0)
		return r;
	r = manager_open_udev(m);
	if (r < 0)
		return r;

	(void)sd_notifyf(false, "READY=1\nSTATUS=Scanning devices");
	log_info("kmodd %s running for kernel %s%s%s; control socket %s.", PACKAGE_VERSION, m->kver,
		 streq(m->root, "/") ? "" : " under ", streq(m->root, "/") ? "" : m->root,
		 m->socket_path ?: "from the service manager");

	r = manager_scan(m, &devices, &queued);
	if (r < 0)
		log_warning_errno(r, "Cannot scan %s/sys: %m, ignoring", streq(m->root, "/") ? "" : m->root);
	else
		log_info("Start-up scan: %u devices without a driver, %u to look up.", devices, queued);
	manager_notify_status(m);
	manager_check_idle(m);
	return 0;
}

int manager_run(Manager *m)
{
	int r = sd_event_loop(m->event);

	(void)sd_notify(false, "STOPPING=1\nSTATUS=Stopped");
	return r;
}

/* ---- journal ---- */

#include <systemd/sd-journal.h>

static const char *const event_message_ids[_EVENT_KIND_MAX] = {
	[EVENT_SEEN] = "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d70",
	[EVENT_RESOLVED] = "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d71",
	[EVENT_INSTALLED] = "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d72",
	[EVENT_LOADED] = "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d73",
	[EVENT_REFUSED] = "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d74",
	[EVENT_FAILED] = "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d75",
};

static const int event_priorities[_EVENT_KIND_MAX] = {
	[EVENT_SEEN] = LOG_DEBUG,     [EVENT_RESOLVED] = LOG_INFO, [EVENT_INSTALLED] = LOG_NOTICE,
	[EVENT_LOADED] = LOG_NOTICE,  [EVENT_REFUSED] = LOG_NOTICE, [EVENT_FAILED] = LOG_WARNING,
};

static bool to_journal(void)
{
	static int cached = -1;

	if (cached < 0)
		cached = getenv("JOURNAL_STREAM") != NULL;
	return cached;
}

void manager_log_event(Manager *m, EventKind kind, const Job *j, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL, *pkgs = NULL, *mods = NULL;
	char durations[_PHASE_MAX][48];
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		return;
	pkgs = strv_join(j->packages, " ");
	mods = strv_join(j->loaded ?: j->modules, " ");
	for (Phase p = 0; p < _PHASE_MAX; p++) {
		usec_t d = j->t[p] && j->t[p] >= j->t[PHASE_RECEIVED] ? j->t[p] - j->t[PHASE_RECEIVED] : 0;
		char name[24];
		size_t i;

		for (i = 0; phase_to_string(p)[i] && i < sizeof(name) - 1; i++)
			name[i] = toupper((unsigned char)phase_to_string(p)[i]);
		name[i] = 0;
		if (j->t[p])
			snprintf(durations[p], sizeof(durations[p]), "%s_USEC=%" PRIu64, name, d);
		else
			snprintf(durations[p], sizeof(durations[p]), "%s_USEC=", name);
	}
	/* "device seen" is sent at debug priority: journald keeps it, the console does not show it */
	(void)sd_journal_send("MESSAGE=%s", msg, "MESSAGE_ID=%s", event_message_ids[kind],
			      "PRIORITY=%i", event_priorities[kind], "MODALIAS=%s",
			      strempty(j->modalias), "DEVPATH=%s", strempty(j->devpath),
			      "PACKAGE=%s", strempty(pkgs), "MODULE=%s", strempty(mods),
			      "RESULT=%s", j->result ?: "pending", "KMODD_JOB=%u", j->id,
			      "%s", durations[PHASE_DECIDED], "%s", durations[PHASE_RESOLVED],
			      "%s", durations[PHASE_DOWNLOADED], "%s",
			      durations[PHASE_INSTALLED], "%s", durations[PHASE_INDEXED], "%s",
			      durations[PHASE_LOADED], NULL);
	if (!to_journal())
		log_full(event_priorities[kind], "%s", msg);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control server: io.kmodd.Manager over Varlink on <root>/run/kmodd/io.kmodd. Everything
 * that arrives here is untrusted: messages are size-limited and strictly parsed, the number
 * of connections is bounded, and only uid 0 may change anything (SO_PEERCRED). */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <systemd/sd-daemon.h>

#include "db.h"
#include "fileio.h"
#include "log.h"
#include "manager.h"
#include "strv.h"

#define OUTPUT_MAX (4u * 1024 * 1024)
#define NEEDS_MAX 256
#define NEED_LEN_MAX 512

struct Connection {
	Manager *m;
	Connection *next, *prev;
	int fd;
	sd_event_source *io;
	sd_event_source *defer; /* processes buffered calls */
	VarlinkBuffer in;
	char *out;
	size_t out_size, out_allocated;
	uid_t uid;
	pid_t pid;
	bool monitor;
	bool pending; /* a call waits for a job: read nothing more until it is answered */
	Job *job;
	bool closing; /* close once the output is written */
	bool dead;
};

static const char interface_description[] =
	"# kmodd: kernel modules from KMP repositories, installed when devices appear\n"
	"interface io.kmodd.Manager\n"
	"\n"
	"type Timeline (received: int, decided: ?float, resolved: ?float, downloaded: ?float,\n"
	"  installed: ?float, indexed: ?float, loaded: ?float)\n"
	"\n"
	"# The daemon's state and counters\n"
	"method Status() -> (version: string, kernel: string, state: string, queued: int,\n"
	"  counters: object, peakRssKiB: int)\n"
	"# Installed KMPs and the devices seen\n"
	"method List() -> (packages: []object, devices: []object)\n"
	"# Handle a device's modalias as if its uevent had arrived; answered when done\n"
	"method HandleModalias(modalias: string, devpath: ?string) -> (result: string,\n"
	"  message: ?string, packages: []string, modules: []string, loaded: []string,\n"
	"  timelineMs: object)\n"
	"# Install modules, packages, capabilities or what a modalias needs\n"
	"method Install(modules: ?[]string, packages: ?[]string, capabilities: ?[]string,\n"
	"  modalias: ?string, dryRun: ?bool) -> (result: string, packages: []string)\n"
	"method Remove(packages: []string, force: ?bool, dryRun: ?bool) -> (result: string,\n"
	"  packages: []string)\n"
	"# Install every KMP of a set (a policy file)\n"
	"method Ensure(set: string, dryRun: ?bool) -> (result: string, packages: []string)\n"
	"# Look at every device with a modalias and no driver again\n"
	"method Scan() -> (devices: int, queued: int)\n"
	"# Refresh the repositories' metadata\n"
	"method Refresh() -> (result: string, message: ?string)\n"
	"# Every event, as it happens (call with more)\n"
	"method Monitor() -> (event: string)\n"
	"\n"
	"error ProtocolError (reason: string)\n"
	"error MessageTooLarge (max: int)\n"
	"error Busy (reason: string)\n"
	"error NoMatch (message: string)\n"
	"error Unsatisfiable (message: string, problems: []string)\n"
	"error Refused (message: string)\n"
	"error Locked (message: string)\n"
	"error Failed (message: string)\n"
	"error ShuttingDown ()\n";

static void connection_free(Connection *c);

Connection *connection_next(Connection *c)
{
	return c->next;
}

bool connection_is_monitor(const Connection *c)
{
	return c->monitor && !c->dead;
}

static void connection_update_events(Connection *c)
{
	uint32_t ev = 0;

	if (c->dead)
		return;
	if (!c->pending && !c->closing)
		ev |= EPOLLIN;
	if (c->out_size > 0)
		ev |= EPOLLOUT;
	(void)sd_event_source_set_io_events(c->io, ev);
}

static int connection_flush(Connection *c)
{
	while (c->out_size > 0) {
		ssize_t k = send(c->fd, c->out, c->out_size, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			break;
		if (k < 0)
			return negative_errno();
		memmove(c->out, c->out + k, c->out_size - k);
		c->out_size -= k;
	}
	return 0;
}

/* Queues a formatted message (takes msg) and writes what the socket takes now. */
static int connection_queue(Connection *c, char *msg)
{
	size_t n;
	int r;

	if (!msg)
		return -ENOMEM;
	n = strlen(msg) + 1;
	if (c->out_size + n > OUTPUT_MAX) {
		/* a reader that does not read (a stuck monitor) is dropped, not buffered forever */
		free(msg);
		c->closing = true;
		c->dead = true;
		return -ENOBUFS;
	}
	if (!GREEDY_REALLOC(c->out, c->out_allocated, c->out_size + n)) {
		free(msg);
		return -ENOMEM;
	}
	memcpy(c->out + c->out_size, msg, n);
	c->out_size += n;
	free(msg);
	r = connection_flush(c);
	if (r < 0)
		c->dead = true;
	connection_update_events(c);
	return r;
}

static int reply(Connection *c, json_object *params, bool continues)
{
	return connection_queue(c, varlink_format_reply(params, continues));
}

static int reply_error(Connection *c, const char *error, json_object *params)
{
	int r = connection_queue(c, varlink_format_error(error, params));

	json_object_put(params);
	return r;
}

static int reply_error_string(Connection *c, const char *error, const char *key, const char *value)
{
	json_object *p = json_object_new_object();

	if (key)
		json_object_object_add(p, key, json_object_new_string(value));
	return reply_error(c, error, p);
}

static int reply_invalid(Connection *c, const char *parameter)
{
	return reply_error_string(c, VARLINK_ERROR_INVALID_PARAMETER, "parameter", parameter);
}

static void schedule_processing(Connection *c)
{
	if (c->dead || c->closing || c->in.size > 0)
		(void)sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
}

void connection_forget_job(Connection *c)
{
	c->job = NULL;
}

void connection_reply_job(Connection *c, const Job *j)
{
	json_object *o = job_to_json(j);
	const char *error = NULL;

	c->job = NULL;
	c->pending = false;
	if (j->kind != JOB_MODALIAS) {
		if (streq(j->result, "no-match"))
			error = VARLINK_ERROR_NO_MATCH;
		else if (streq(j->result, "unsatisfiable"))
			error = VARLINK_ERROR_UNSATISFIABLE;
		else if (streq(j->result, "locked"))
			error = VARLINK_ERROR_LOCKED;
		else if (streq(j->result, "failed"))
			error = VARLINK_ERROR_FAILED;
		else if (streq(j->result, "cancelled"))
			error = VARLINK_ERROR_STOPPING;
	}
	if (error)
		(void)reply_error(c, error, o);
	else {
		(void)reply(c, o, false);
		json_object_put(o);
	}
	connection_update_events(c);
	schedule_processing(c);
}

void connection_send_event(Connection *c, json_object *event)
{
	(void)reply(c, event, true);
	if (c->dead)
		schedule_processing(c);
}

/* ---- methods ---- */

static int method_status(Connection *c, VarlinkCall *call)
{
	json_object *o = manager_status_json(c->m);
	int r = reply(c, o, false);

	json_object_put(o);
	return r;
}

static int method_list(Connection *c, VarlinkCall *call)
{
	Manager *m = c->m;
	json_object *o = json_object_new_object(), *pkgs = json_object_new_array(),
		    *devs = json_object_new_array();
	_cleanup_(db_closep) Db *db = NULL;
	DbPackage *l = NULL;
	size_t n = 0, k = 0;
	const char *key;
	Record *rec;
	int r;

	if (db_open(m->root, false, &db) >= 0 && db_list_packages(db, NULL, &l, &n) >= 0) {
		for (size_t i = 0; i < n; i++) {
			json_object *p = json_object_new_object();

			json_object_object_add(p, "name", json_object_new_string(l[i].ref.name));
			json_object_object_add(p, "evr", json_object_new_string(strempty(l[i].ref.evr)));
			json_object_object_add(p, "kernel", json_object_new_string(strempty(l[i].kver)));
			json_object_object_add(p, "reason", json_object_new_string(strempty(
								     install_reason_to_string(l[i].ref.reason))));
			if (l[i].ref.device)
				json_object_object_add(p, "device", json_object_new_string(l[i].ref.device));
			json_object_array_add(pkgs, p);
		}
		db_packages_free(l, n);
	}
	HASHMAP_FOREACH_KEY(rec, key, m->records) {
		static const char *const states[] = { "queued", "running", "done", "no-match" };
		json_object *d;

		if (++k > 4096)
			break;
		d = json_object_new_object();
		json_object_object_add(d, "modalias", json_object_new_string(key));
		json_object_object_add(d, "state", json_object_new_string(states[rec->state]));
		if (rec->last_result)
			json_object_object_add(d, "result", json_object_new_string(rec->last_result));
		json_object_array_add(devs, d);
	}
	json_object_object_add(o, "packages", pkgs);
	json_object_object_add(o, "devices", devs);
	r = reply(c, o, false);
	json_object_put(o);
	return r;
}

static int method_handle_modalias(Connection *c, VarlinkCall *call)
{
	const char *modalias = NULL, *devpath = NULL;
	int r;

	json_object_object_foreach(call->parameters, key, val) {
		(void)val;
		if (!streq(key, "modalias") && !streq(key, "devpath"))
			return reply_invalid(c, key);
	}
	if (varlink_param_string(call->parameters, "modalias", &modalias) < 0)
		return reply_invalid(c, "modalias");
	r = varlink_param_string(call->parameters, "devpath", &devpath);
	if (r < 0 && r != -ENOENT)
		return reply_invalid(c, "devpath");
	if (!call->oneway) {
		c->pending = true;
		connection_update_events(c);
	}
	r = manager_handle_modalias(c->m, modalias, devpath, "varlink", call->oneway ? NULL : c);
	if (r == -EINVAL) {
		c->pending = false;
		return call->oneway ? 0 : reply_invalid(c, "modalias");
	}
	if (r < 0) {
		c->pending = false;
		return call->oneway ? 0 : reply_error_string(c, VARLINK_ERROR_FAILED, "message", strerror(-r));
	}
	/* queued: the answer comes when the job is done; otherwise it was answered already */
	if (c->pending) {
		Record *rec = hashmap_get(c->m->records, modalias);

		c->job = rec ? rec->job : NULL;
	}
	return 0;
}

static int start_job(Connection *c, VarlinkCall *call, Job *j)
{
	int r;

	if (!call->oneway) {
		r = job_add_waiter(j, c);
		if (r < 0) {
			job_free(j);
			return reply_error_string(c, VARLINK_ERROR_FAILED, "message", strerror(-r));
		}
		c->pending = true;
		c->job = j;
		connection_update_events(c);
	}
	r = manager_enqueue(c->m, j);
	if (r < 0) {
		c->pending = false;
		c->job = NULL;
		return call->oneway ? 0 : reply_error(c, VARLINK_ERROR_STOPPING, NULL);
	}
	return 0;
}

static int method_install(Connection *c, VarlinkCall *call)
{
	static const struct {
		const char *key;
		NeedKind kind;
	} kinds[] = {
		{ "modules", NEED_MODULE },
		{ "packages", NEED_PACKAGE },
		{ "capabilities", NEED_CAPABILITY },
	};
	_cleanup_strv_free_ char **needs = NULL;
	const char *modalias = NULL;
	NeedKind kind = _NEED_KIND_INVALID;
	bool dry_run = false;
	Job *j;
	int r;

	json_object_object_foreach(call->parameters, key, val) {
		(void)val;
		if (!streq(key, "modules") && !streq(key, "packages") && !streq(key, "capabilities") &&
		    !streq(key, "modalias") && !streq(key, "dryRun"))
			return reply_invalid(c, key);
	}
	for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
		_cleanup_strv_free_ char **l = NULL;

		r = varlink_param_strv(call->parameters, kinds[i].key, NEEDS_MAX, NEED_LEN_MAX, &l);
		if (r == -ENOENT)
			continue;
		if (r < 0 || !l[0] || needs)
			return reply_invalid(c, kinds[i].key);
		needs = TAKE_PTR(l);
		kind = kinds[i].kind;
	}
	r = varlink_param_string(call->parameters, "modalias", &modalias);
	if (r >= 0) {
		if (needs || strlen(modalias) > NEED_LEN_MAX || !strchr(modalias, ':'))
			return reply_invalid(c, "modalias");
		r = strv_extend(&needs, modalias);
		if (r < 0)
			return r;
		kind = NEED_MODALIAS;
	} else if (r != -ENOENT)
		return reply_invalid(c, "modalias");
	if (!needs)
		return reply_invalid(c, "modules");
	r = varlink_param_bool(call->parameters, "dryRun", &dry_run);
	if (r < 0 && r != -ENOENT)
		return reply_invalid(c, "dryRun");

	j = job_new(JOB_INSTALL);
	if (!j)
		return -ENOMEM;
	j->need_kind = kind;
	j->needs = TAKE_PTR(needs);
	j->dry_run = dry_run;
	j->source = strdup("varlink");
	return start_job(c, call, j);
}

static int method_remove(Connection *c, VarlinkCall *call)
{
	_cleanup_strv_free_ char **names = NULL;
	bool force = false, dry_run = false;
	Job *j;
	int r;

	json_object_object_foreach(call->parameters, key, val) {
		(void)val;
		if (!streq(key, "packages") && !streq(key, "force") && !streq(key, "dryRun"))
			return reply_invalid(c, key);
	}
	r = varlink_param_strv(call->parameters, "packages", NEEDS_MAX, NEED_LEN_MAX, &names);
	if (r < 0 || !names[0])
		return reply_invalid(c, "packages");
	if ((r = varlink_param_bool(call->parameters, "force", &force)) < 0 && r != -ENOENT)
		return reply_invalid(c, "force");
	if ((r = varlink_param_bool(call->parameters, "dryRun", &dry_run)) < 0 && r != -ENOENT)
		return reply_invalid(c, "dryRun");
	j = job_new(JOB_REMOVE);
	if (!j)
		return -ENOMEM;
	j->needs = TAKE_PTR(names);
	j->force = force;
	j->dry_run = dry_run;
	return start_job(c, call, j);
}

static int method_ensure(Connection *c, VarlinkCall *call)
{
	const char *set = NULL;
	bool dry_run = false;
	Job *j;
	int r;

	json_object_object_foreach(call->parameters, key, val) {
		(void)val;
		if (!streq(key, "set") && !streq(key, "dryRun"))
			return reply_invalid(c, key);
	}
	if (varlink_param_string(call->parameters, "set", &set) < 0 || !*set || strlen(set) > 64 ||
	    strpbrk(set, "/ \t"))
		return reply_invalid(c, "set");
	if ((r = varlink_param_bool(call->parameters, "dryRun", &dry_run)) < 0 && r != -ENOENT)
		return reply_invalid(c, "dryRun");
	/* a set is a policy file; its modules become the needs in the worker */
	j = job_new(JOB_INSTALL);
	if (!j)
		return -ENOMEM;
	j->set = strdup(set);
	if (!j->set || asprintf(&j->requested_by, "set:%s", set) < 0) {
		job_free(j);
		return -ENOMEM;
	}
	j->need_kind = NEED_MODULE;
	j->dry_run = dry_run;
	return start_job(c, call, j);
}

static int method_scan(Connection *c, VarlinkCall *call)
{
	unsigned devices = 0, queued = 0;
	json_object *o;
	int r;

	if (json_object_object_length(call->parameters) > 0)
		return reply_invalid(c, "parameters");
	r = manager_scan(c->m, &devices, &queued);
	if (r < 0)
		return reply_error_string(c, VARLINK_ERROR_FAILED, "message", strerror(-r));
	o = json_object_new_object();
	json_object_object_add(o, "devices", json_object_new_int64(devices));
	json_object_object_add(o, "queued", json_object_new_int64(queued));
	r = reply(c, o, false);
	json_object_put(o);
	return r;
}

static int method_refresh(Connection *c, VarlinkCall *call)
{
	Job *j;

	if (json_object_object_length(call->parameters) > 0)
		return reply_invalid(c, "parameters");
	j = job_new(JOB_REFRESH);
	if (!j)
		return -ENOMEM;
	return start_job(c, call, j);
}

static int method_monitor(Connection *c, VarlinkCall *call)
{
	json_object *o;
	int r;

	if (!call->more)
		return reply_error(c, VARLINK_ERROR_EXPECTED_MORE, NULL);
	c->monitor = true;
	o = manager_status_json(c->m);
	json_object_object_add(o, "event", json_object_new_string("subscribed"));
	r = reply(c, o, true);
	json_object_put(o);
	return r;
}

static int method_get_info(Connection *c, VarlinkCall *call)
{
	json_object *o = json_object_new_object(), *ifs = json_object_new_array();
	int r;

	json_object_object_add(o, "vendor", json_object_new_string("kmodd"));
	json_object_object_add(o, "product", json_object_new_string("kmodd"));
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "url", json_object_new_string("https://varlink.org"));
	json_object_array_add(ifs, json_object_new_string("org.varlink.service"));
	json_object_array_add(ifs, json_object_new_string(VARLINK_INTERFACE));
	json_object_object_add(o, "interfaces", ifs);
	r = reply(c, o, false);
	json_object_put(o);
	return r;
}

static int method_get_description(Connection *c, VarlinkCall *call)
{
	const char *name = NULL;
	json_object *o;
	int r;

	if (varlink_param_string(call->parameters, "interface", &name) < 0)
		return reply_invalid(c, "interface");
	if (!streq(name, VARLINK_INTERFACE))
		return reply_error_string(c, VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", name);
	o = json_object_new_object();
	json_object_object_add(o, "description", json_object_new_string(interface_description));
	r = reply(c, o, false);
	json_object_put(o);
	return r;
}

typedef struct Method {
	const char *name;
	int (*run)(Connection *c, VarlinkCall *call);
	bool privileged;
	bool takes_parameters;
} Method;

static const Method methods[] = {
	{ VARLINK_INTERFACE ".Status", method_status, false, false },
	{ VARLINK_INTERFACE ".List", method_list, false, false },
	{ VARLINK_INTERFACE ".Monitor", method_monitor, false, false },
	{ VARLINK_INTERFACE ".HandleModalias", method_handle_modalias, true, true },
	{ VARLINK_INTERFACE ".Install", method_install, true, true },
	{ VARLINK_INTERFACE ".Remove", method_remove, true, true },
	{ VARLINK_INTERFACE ".Ensure", method_ensure, true, true },
	{ VARLINK_INTERFACE ".Scan", method_scan, true, false },
	{ VARLINK_INTERFACE ".Refresh", method_refresh, true, false },
	{ "org.varlink.service.GetInfo", method_get_info, false, false },
	{ "org.varlink.service.GetInterfaceDescription", method_get_description, false, true },
};

static int connection_dispatch(Connection *c, const char *msg, size_t size)
{
	VarlinkCall call = {};
	const char *why = NULL;
	size_t iflen;
	int r;

	r = varlink_call_parse(msg, size, &call, &why);
	if (r < 0) {
		c->m->counters.protocol_errors++;
		return reply_error_string(c, VARLINK_ERROR_PROTOCOL, "reason", why ?: strerror(-r));
	}
	if (c->monitor) {
		/* a monitor only streams; anything else on it is a protocol error */
		varlink_call_done(&call);
		return reply_error_string(c, VARLINK_ERROR_PROTOCOL, "reason",
					  "a monitoring connection takes no further calls");
	}
	for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
		if (!streq(call.method, methods[i].name))
			continue;
		if (methods[i].privileged && c->uid != 0) {
			c->m->counters.denied++;
			r = call.oneway ? 0
					: reply_error_string(c, VARLINK_ERROR_PERMISSION_DENIED, "message",
							     "only root may change the system");
		} else if (!methods[i].takes_parameters &&
			   json_object_object_length(call.parameters) > 0) {
			json_object_object_foreach(call.parameters, key, val) {
				(void)val;
				r = call.oneway ? 0 : reply_invalid(c, key);
				break;
			}
		} else if (c->m->stopping && methods[i].privileged)
			r = call.oneway ? 0 : reply_error(c, VARLINK_ERROR_STOPPING, NULL);
		else
			r = methods[i].run(c, &call);
		varlink_call_done(&call);
		return r;
	}
	(void)varlink_method_split(call.method, NULL, &iflen);
	if ((iflen == strlen(VARLINK_INTERFACE) && strncmp(call.method, VARLINK_INTERFACE, iflen) == 0) ||
	    (iflen == strlen("org.varlink.service") &&
	     strncmp(call.method, "org.varlink.service", iflen) == 0))
		r = reply_error_string(c, VARLINK_ERROR_METHOD_NOT_FOUND, "method", call.method);
	else {
		char iface[256];

		snprintf(iface, sizeof(iface), "%.*s", (int)iflen, call.method);
		r = reply_error_string(c, VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", iface);
	}
	varlink_call_done(&call);
	return r;
}

static void connection_process(Connection *c)
{
	while (!c->pending && !c->closing && !c->dead) {
		_cleanup_free_ char *msg = NULL;
		size_t size;
		int r;

		r = varlink_buffer_next(&c->in, &msg, &size);
		if (r == 0)
			break;
		if (r < 0) {
			json_object *p = json_object_new_object();

			c->m->counters.protocol_errors++;
			json_object_object_add(p, "max", json_object_new_int64(c->m->config.max_message_size));
			(void)reply_error(c, VARLINK_ERROR_TOO_LARGE, p);
			c->closing = true; /* the stream cannot be resynchronised */
			break;
		}
		r = connection_dispatch(c, msg, size);
		if (r == -ENOMEM)
			log_oom();
	}
	connection_update_events(c);
}

static int on_defer(sd_event_source *s, void *userdata)
{
	Connection *c = userdata;

	connection_process(c);
	if (c->dead || (c->closing && c->out_size == 0))
		connection_free(c);
	return 0;
}

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	Connection *c = userdata;

	if (revents & EPOLLOUT && connection_flush(c) < 0)
		c->dead = true;
	if (revents & EPOLLIN && !c->pending && !c->closing && !c->dead) {
		char buf[16384];
		ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (k < 0 && errno != EAGAIN && errno != EINTR)
			c->dead = true;
		else if (k == 0)
			c->dead = true; /* the peer is gone: nobody reads answers any more */
		else if (k > 0 && varlink_buffer_feed(&c->in, buf, k) < 0)
			c->dead = true;
		if (!c->dead)
			connection_process(c);
	}
	if (!c->dead && (revents & (EPOLLHUP | EPOLLERR)) && !(revents & EPOLLIN))
		c->dead = true;
	if (c->dead || (c->closing && c->out_size == 0)) {
		connection_free(c);
		return 0;
	}
	connection_update_events(c);
	return 0;
}

static void connection_free(Connection *c)
{
	Manager *m = c->m;

	if (c->job)
		job_remove_waiter(c->job, c);
	/* a waiter may also sit in a job it joined by deduplication */
	for (Job *j = m->queue_head; j; j = j->next)
		job_remove_waiter(j, c);
	for (Job *j = m->running; j; j = j->batch_next)
		job_remove_waiter(j, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		m->connections = c->next;
	if (c->next)
		c->next->prev = c->prev;
	m->n_connections--;
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->defer);
	safe_close(c->fd);
	varlink_buffer_done(&c->in);
	free(c->out);
	free(c);
	manager_check_idle(m);
}

void manager_close_connections(Manager *m)
{
	while (m->connections)
		connection_free(m->connections);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	Manager *m = userdata;
	struct ucred cred = {};
	socklen_t len = sizeof(cred);
	Connection *c;
	int cfd, r;

	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warning("Cannot accept a control connection: %m, ignoring");
		return 0;
	}
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		safe_close(cfd);
		return 0;
	}
	if (m->n_connections >= m->config.max_connections) {
		_cleanup_free_ char *msg = NULL;
		json_object *p = json_object_new_object();

		json_object_object_add(p, "reason", json_object_new_string("too many connections"));
		msg = varlink_format_error(VARLINK_ERROR_BUSY, p);
		json_object_put(p);
		if (msg)
			(void)send(cfd, msg, strlen(msg) + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		safe_close(cfd);
		return 0;
	}
	c = calloc(1, sizeof(Connection));
	if (!c) {
		safe_close(cfd);
		return 0;
	}
	c->m = m;
	c->fd = cfd;
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->in.max = m->config.max_message_size;
	r = sd_event_add_io(m->event, &c->io, cfd, EPOLLIN, on_connection_io, c);
	if (r >= 0)
		r = sd_event_add_defer(m->event, &c->defer, on_defer, c);
	if (r < 0) {
		sd_event_source_unref(c->io);
		safe_close(cfd);
		free(c);
		return 0;
	}
	(void)sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
	(void)sd_event_source_set_description(c->io, "varlink-connection");
	(void)sd_event_source_set_description(c->defer, "varlink-process");
	c->next = m->connections;
	if (m->connections)
		m->connections->prev = c;
	m->connections = c;
	m->n_connections++;
	manager_check_idle(m);
	return 0;
}

int manager_open_control(Manager *m)
{
	int n, r;

	n = sd_listen_fds(true);
	if (n > 1)
		return log_error_errno(-EINVAL, "Received %d sockets from the service manager, expected "
						"one; fix kmodd.socket.",
				       n);
	if (n == 1) {
		if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)
			return log_error_errno(-EINVAL, "The socket from the service manager is not a "
							"listening AF_UNIX stream socket; fix kmodd.socket.");
		m->listen_fd = SD_LISTEN_FDS_START;
		m->socket_activated = true;
	} else {
		_cleanup_free_ char *dir = kmodd_path_run(m->root);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		_cleanup_close_ int fd = -EBADF;

		if (!dir)
			return log_oom();
		m->socket_path = varlink_socket_path(m->root);
		if (!m->socket_path)
			return log_oom();
		if (strlen(m->socket_path) >= sizeof(sa.sun_path))
			return log_error_errno(-ENAMETOOLONG, "%s: socket path too long; use a shorter "
							      "--root.",
					       m->socket_path);
		r = mkdir_p(dir, 0755);
		if (r < 0)
			return log_error_errno(r, "Cannot create %s: %m", dir);
		strcpy(sa.sun_path, m->socket_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return log_error_errno(negative_errno(), "Cannot create a socket: %m");
		(void)unlink(m->socket_path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			r = negative_errno();
			free(m->socket_path);
			m->socket_path = NULL;
			return log_error_errno(r, "Cannot bind %s: %m", sa.sun_path);
		}
		/* everybody may connect and read the status; SO_PEERCRED decides about changes */
		(void)chmod(m->socket_path, 0666);
		if (listen(fd, 64) < 0)
			return log_error_errno(negative_errno(), "Cannot listen on %s: %m",
					       m->socket_path);
		m->listen_fd = TAKE_FD(fd);
	}
	r = sd_event_add_io(m->event, &m->listen_source, m->listen_fd, EPOLLIN, on_accept, m);
	if (r < 0)
		return log_error_errno(r, "Cannot watch the control socket: %m");
	(void)sd_event_source_set_description(m->listen_source, "varlink-listen");
	return 0;
}

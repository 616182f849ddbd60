/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The manager owns the one sd_event loop: the udev monitor, the control socket, signals,
 * the queue of device events and the worker that runs one job (resolve, download, install,
 * load) at a time off the loop, so that the loop never blocks. */

#include <libkmod.h>
#include <libudev.h>
#include <pthread.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include <json-c/json.h>

#include "blacklist.h"
#include "daemon-config.h"
#include "hashmap.h"
#include "package.h"
#include "resolve.h"
#include "varlink.h"

typedef uint64_t usec_t;
#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

typedef struct Manager Manager;
typedef struct Connection Connection;

typedef enum JobKind {
	JOB_MODALIAS, /* a device: from a uevent, the coldplug scan or HandleModalias */
	JOB_INSTALL,  /* Install/Ensure: needs of one kind */
	JOB_REMOVE,
	JOB_REFRESH,  /* repository metadata */
	_JOB_KIND_MAX,
	_JOB_KIND_INVALID = -EINVAL,
} JobKind;

/* The phases of a device event, for the timeline (CLOCK_REALTIME, usec; 0: not reached). */
typedef enum Phase {
	PHASE_RECEIVED,
	PHASE_DECIDED,
	PHASE_RESOLVED,
	PHASE_DOWNLOADED,
	PHASE_INSTALLED,
	PHASE_INDEXED,
	PHASE_LOADED,
	_PHASE_MAX,
} Phase;

const char *phase_to_string(Phase p);

typedef struct Job {
	JobKind kind;
	unsigned id;
	/* what */
	char *modalias;
	char *devpath;
	char *source; /* "uevent", "coldplug", "varlink" */
	NeedKind need_kind;
	char **needs;
	bool dry_run;
	bool force;
	char *requested_by;
	char *set; /* Ensure: the set whose modules are the needs */
	/* who waits for the answer */
	Connection **waiters;
	size_t n_waiters, allocated_waiters;
	/* results, written by the worker */
	int r;
	const char *result; /* "installed", "served", "no-match", "refused", "blacklisted",
			     * "would-install", "unsatisfiable", "locked", "failed", "removed",
			     * "refreshed" */
	char *message;
	char **packages;
	char **modules;
	char **loaded;
	char **load_failed;
	char **problems;
	usec_t t[_PHASE_MAX];
	struct Job *next;       /* in the queue */
	struct Job *batch_next; /* running together with the first */
} Job;

typedef struct Counters {
	uint64_t received;      /* device events (uevents, coldplug, HandleModalias) */
	uint64_t deduplicated;  /* joined a queued or running event of the same modalias */
	uint64_t served;        /* an installed module serves it already */
	uint64_t negative_hits; /* answered from the negative cache */
	uint64_t refused;       /* policy or blacklist */
	uint64_t resolved;      /* resolutions run */
	uint64_t installed;     /* device events and requests that installed something */
	uint64_t transactions;  /* install transactions committed (the worker counts, atomically) */
	uint64_t loaded;        /* modules loaded */
	uint64_t no_match;
	uint64_t failed;
	uint64_t dropped;       /* queue full: caught by the rescan that follows */
	uint64_t rescans;
	uint64_t enobufs;
	uint64_t jobs;
	uint64_t protocol_errors;
	uint64_t denied;        /* calls refused for lack of privilege */
} Counters;

/* What the manager remembers per modalias. */
typedef enum RecordState {
	RECORD_QUEUED,
	RECORD_RUNNING,
	RECORD_DONE,
	RECORD_NEGATIVE,
} RecordState;

typedef struct Record {
	RecordState state;
	usec_t expires; /* RECORD_NEGATIVE: until then (CLOCK_MONOTONIC) */
	Job *job;       /* RECORD_QUEUED/RUNNING */
	const char *last_result;
} Record;

struct Manager {
	char *root;
	char *kver;
	DaemonConfig config;
	sd_event *event;
	sd_event_source *sigterm, *sigint, *sighup;
	sd_event_source *idle_timer;
	sd_event_source *rescan_source;
	sd_event_source *worker_source;
	int worker_efd;

	/* uevents */
	struct udev *udev;
	struct udev_monitor *monitor;
	sd_event_source *monitor_source;
	bool no_udev;

	/* control socket */
	int listen_fd;
	bool socket_activated;
	char *socket_path; /* NULL when activated (not ours to remove) */
	sd_event_source *listen_source;
	Connection *connections;
	unsigned n_connections;

	/* device events */
	Hashmap *records; /* modalias -> Record */
	Job *queue_head, *queue_tail;
	unsigned queue_len;
	unsigned next_job_id;
	bool rescan_pending;
	struct kmod_ctx *kmod; /* main thread's, for "already served" lookups */

	/* the worker: one job at a time; only it touches the resolver */
	pthread_t worker;
	Job *running;
	Resolver *resolver;
	bool resolver_stale;

	Counters counters;
	usec_t started;
	bool stopping;
	bool exit_requested;
	bool reload_pending; /* SIGHUP while the worker reads the configuration */
};

int manager_new(const char *root, const char *kver, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
int manager_start(Manager *m);
int manager_run(Manager *m);

/* Entry points of the sources. */
int manager_handle_modalias(Manager *m, const char *modalias, const char *devpath,
			    const char *source, Connection *waiter);
int manager_enqueue(Manager *m, Job *j);
/* Scans <root>/sys for devices with a modalias and no driver; returns how many were seen. */
int manager_scan(Manager *m, unsigned *ret_devices, unsigned *ret_queued);
void manager_schedule_rescan(Manager *m);
void manager_check_idle(Manager *m);
json_object *manager_status_json(Manager *m);
/* The monitor stream. */
void manager_broadcast(Manager *m, json_object *event);

Job *job_new(JobKind kind);
Job *job_free(Job *j);
int job_add_waiter(Job *j, Connection *c);
void job_remove_waiter(Job *j, Connection *c);
json_object *job_to_json(const Job *j);

/* uevent.c */
int manager_open_udev(Manager *m);

/* control.c */
int manager_open_control(Manager *m);
void manager_close_connections(Manager *m);
/* Replies to a waiting connection and lets it read its next call. */
void connection_reply_job(Connection *c, const Job *j);
void connection_forget_job(Connection *c);
bool connection_is_monitor(const Connection *c);
void connection_send_event(Connection *c, json_object *event);
Connection *connection_next(Connection *c);

/* journal.c: structured messages with a MESSAGE_ID per kind */
typedef enum EventKind {
	EVENT_SEEN,
	EVENT_RESOLVED,
	EVENT_INSTALLED,
	EVENT_LOADED,
	EVENT_REFUSED,
	EVENT_FAILED,
	_EVENT_KIND_MAX,
} EventKind;

void manager_log_event(Manager *m, EventKind kind, const Job *j, const char *fmt, ...)
	_printf_(4, 5);
usec_t now_realtime(void);
usec_t now_monotonic(void);

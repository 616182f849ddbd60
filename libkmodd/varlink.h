/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Varlink (varlink.org) over a stream socket: every message is one JSON object followed by a
 * NUL byte. This file holds what kmodd and kmodctl share: framing with a size limit, strict
 * parsing of calls and replies (everything here comes from another process and is untrusted),
 * formatting, and a small blocking client.
 *
 * A call:  {"method":"io.kmodd.Manager.Status","parameters":{...},"more":true,"oneway":false}
 * A reply: {"parameters":{...},"continues":true} or {"error":"io.kmodd.Manager.X","parameters":{}} */

#include <stdint.h>

#include <json-c/json.h>

#include "macros.h"

#define VARLINK_INTERFACE "io.kmodd.Manager"
#define VARLINK_MESSAGE_MAX_DEFAULT (64u * 1024)
#define VARLINK_JSON_DEPTH_MAX 16

/* The errors of the protocol and of io.kmodd.Manager. */
#define VARLINK_ERROR_INTERFACE_NOT_FOUND "org.varlink.service.InterfaceNotFound"
#define VARLINK_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"
#define VARLINK_ERROR_INVALID_PARAMETER "org.varlink.service.InvalidParameter"
#define VARLINK_ERROR_PERMISSION_DENIED "org.varlink.service.PermissionDenied"
#define VARLINK_ERROR_EXPECTED_MORE "org.varlink.service.ExpectedMore"
#define VARLINK_ERROR_PROTOCOL "io.kmodd.Manager.ProtocolError"
#define VARLINK_ERROR_TOO_LARGE "io.kmodd.Manager.MessageTooLarge"
#define VARLINK_ERROR_BUSY "io.kmodd.Manager.Busy"
#define VARLINK_ERROR_FAILED "io.kmodd.Manager.Failed"
#define VARLINK_ERROR_NO_MATCH "io.kmodd.Manager.NoMatch"
#define VARLINK_ERROR_UNSATISFIABLE "io.kmodd.Manager.Unsatisfiable"
#define VARLINK_ERROR_REFUSED "io.kmodd.Manager.Refused"
#define VARLINK_ERROR_LOCKED "io.kmodd.Manager.Locked"
#define VARLINK_ERROR_STOPPING "io.kmodd.Manager.ShuttingDown"

/* Incoming bytes; complete messages are taken out one at a time. */
typedef struct VarlinkBuffer {
	char *data;
	size_t size;      /* bytes held */
	size_t allocated;
	size_t max;       /* largest message accepted (0: VARLINK_MESSAGE_MAX_DEFAULT) */
} VarlinkBuffer;

void varlink_buffer_done(VarlinkBuffer *b);
/* Appends n bytes. */
int varlink_buffer_feed(VarlinkBuffer *b, const void *p, size_t n);
/* Takes the next complete message out: 1 and a NUL-terminated copy of it (without the
 * framing NUL) in *ret, 0 when no complete message is buffered yet, -E2BIG when more than
 * max bytes arrived without a NUL (the stream cannot be resynchronised: close it). */
int varlink_buffer_next(VarlinkBuffer *b, char **ret, size_t *ret_size);

typedef struct VarlinkCall {
	char *method;            /* "io.kmodd.Manager.Status" */
	json_object *parameters; /* never NULL: an empty object when absent */
	bool more;
	bool oneway;
} VarlinkCall;

void varlink_call_done(VarlinkCall *c);
/* -EBADMSG: not a JSON object, trailing data, nesting deeper than VARLINK_JSON_DEPTH_MAX,
 * invalid UTF-8, unknown or mistyped members, a method name that is not
 * "reverse.domain.Method", both more and oneway. *ret_why (optional) says what was wrong. */
int varlink_call_parse(const char *data, size_t size, VarlinkCall *ret, const char **ret_why);

typedef struct VarlinkReply {
	json_object *parameters; /* never NULL on success */
	char *error;             /* NULL, or the error's name */
	bool continues;
} VarlinkReply;

void varlink_reply_done(VarlinkReply *r);
int varlink_reply_parse(const char *data, size_t size, VarlinkReply *ret, const char **ret_why);

/* Interface and method of "a.b.c.Method"; false when malformed. */
bool varlink_method_split(const char *method, const char **ret_method_name,
			  size_t *ret_interface_len);

/* Formatted messages, without the framing NUL. Parameters are not consumed. */
char *varlink_format_call(const char *method, json_object *parameters, bool more, bool oneway);
char *varlink_format_reply(json_object *parameters, bool continues);
char *varlink_format_error(const char *error, json_object *parameters);

/* Typed getters for parameters: -ENOENT when absent (or null), -EBADMSG when mistyped. */
int varlink_param_string(json_object *params, const char *key, const char **ret);
int varlink_param_bool(json_object *params, const char *key, bool *ret);
/* An array of strings, each non-empty and at most max_len bytes; at most max_n of them. */
int varlink_param_strv(json_object *params, const char *key, size_t max_n, size_t max_len,
		       char ***ret);

/* ---- client ---- */

/* <root>/run/kmodd/io.kmodd */
char *varlink_socket_path(const char *root);
/* -ENOENT / -ECONNREFUSED when nothing listens. */
int varlink_connect(const char *path, int *ret_fd);
/* Writes the message and its NUL. */
int varlink_send(int fd, const char *msg);
/* Waits up to timeout_ms (-1: forever) for one reply. -ETIMEDOUT, -ECONNRESET when the peer
 * closed. */
int varlink_recv(int fd, VarlinkBuffer *b, int timeout_ms, VarlinkReply *ret);
/* Connects, sends one call, receives one reply. */
int varlink_call_simple(const char *path, const char *method, json_object *parameters,
			int timeout_ms, VarlinkReply *ret);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "log.h"
#include "strv.h"
#include "varlink.h"

/* ---- framing ---- */

void varlink_buffer_done(VarlinkBuffer *b)
{
	free(b->data);
	*b = (VarlinkBuffer){ .max = b->max };
}

static size_t buffer_max(const VarlinkBuffer *b)
{
	return b->max ?: VARLINK_MESSAGE_MAX_DEFAULT;
}

int varlink_buffer_feed(VarlinkBuffer *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (b->size + n < b->size)
		return -E2BIG;
	if (!GREEDY_REALLOC(b->data, b->allocated, b->size + n + 1))
		return -ENOMEM;
	memcpy(b->data + b->size, p, n);
	b->size += n;
	return 0;
}

int varlink_buffer_next(VarlinkBuffer *b, char **ret, size_t *ret_size)
{
	char *nul, *msg;
	size_t len;

	nul = b->size > 0 ? memchr(b->data, 0, b->size) : NULL;
	if (!nul)
		return b->size > buffer_max(b) ? -E2BIG : 0;
	len = nul - b->data;
	if (len > buffer_max(b))
		return -E2BIG;
	msg = malloc(len + 1);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, b->data, len + 1);
	memmove(b->data, nul + 1, b->size - len - 1);
	b->size -= len + 1;
	*ret = msg;
	if (ret_size)
		*ret_size = len;
	return 1;
}

/* ---- parsing ---- */

static int json_parse_object(const char *data, size_t size, json_object **ret, const char **why)
{
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error e;
	size_t end;

	if (size > INT32_MAX) {
		*why = "message too large";
		return -EBADMSG;
	}
	if (memchr(data, 0, size)) {
		*why = "NUL byte inside the message";
		return -EBADMSG;
	}
	tok = json_tokener_new_ex(VARLINK_JSON_DEPTH_MAX);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, data, (int)size);
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || e != json_tokener_success) {
		json_object_put(o);
		*why = e == json_tokener_error_depth ? "JSON nested too deeply"
		       : e == json_tokener_continue  ? "incomplete JSON"
						     : "not valid JSON";
		return -EBADMSG;
	}
	for (size_t i = end; i < size; i++)
		if (!strchr(" \t\r\n", data[i])) {
			json_object_put(o);
			*why = "data after the JSON object";
			return -EBADMSG;
		}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		*why = "not a JSON object";
		return -EBADMSG;
	}
	*ret = o;
	return 0;
}

static bool interface_valid(const char *s, size_t n)
{
	/* reverse-domain: at least two dot-separated labels of [A-Za-z0-9-], no empty label,
	 * a label neither starting nor ending with '-' */
	size_t label = 0, dots = 0;

	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			dots++;
			continue;
		}
		if (!(isascii(c) && (isalnum(c) || c == '-')))
			return false;
		if (label == 0 && (c == '-' || (i == 0 && !isalpha(c))))
			return false;
		label++;
	}
	return label > 0 && s[n - 1] != '-' && dots >= 1;
}

bool varlink_method_split(const char *method, const char **ret_method_name,
			  size_t *ret_interface_len)
{
	const char *dot = strrchr(method, '.'), *m;

	if (!dot)
		return false;
	m = dot + 1;
	if (!isascii(*m) || !isupper(*m) || strlen(m) > 255)
		return false;
	for (const char *p = m; *p; p++)
		if (!isascii(*p) || !isalnum(*p))
			return false;
	if (!interface_valid(method, dot - method))
		return false;
	if (ret_method_name)
		*ret_method_name = m;
	if (ret_interface_len)
		*ret_interface_len = dot - method;
	return true;
}

void varlink_call_done(VarlinkCall *c)
{
	free(c->method);
	json_object_put(c->parameters);
	*c = (VarlinkCall){};
}

int varlink_call_parse(const char *data, size_t size, VarlinkCall *ret, const char **ret_why)
{
	const char *why = NULL, *method = NULL;
	json_object *o = NULL, *params = NULL;
	bool more = false, oneway = false;
	int r;

	r = json_parse_object(data, size, &o, &why);
	if (r < 0)
		goto fail;
	r = -EBADMSG;
	json_object_object_foreach(o, key, val) {
		if (streq(key, "method")) {
			if (!json_object_is_type(val, json_type_string)) {
				why = "\"method\" is not a string";
				goto fail;
			}
			method = json_object_get_string(val);
		} else if (streq(key, "parameters")) {
			if (json_object_is_type(val, json_type_null))
				continue;
			if (!json_object_is_type(val, json_type_object)) {
				why = "\"parameters\" is not an object";
				goto fail;
			}
			params = val;
		} else if (streq(key, "more") || streq(key, "oneway")) {
			if (json_object_is_type(val, json_type_null))
				continue;
			if (!json_object_is_type(val, json_type_boolean)) {
				why = "\"more\" and \"oneway\" must be booleans";
				goto fail;
			}
			*(streq(key, "more") ? &more : &oneway) = json_object_get_boolean(val);
		} else {
			why = "unknown member in the call (\"upgrade\" is not supported)";
			goto fail;
		}
	}
	if (!method) {
		why = "no \"method\"";
		goto fail;
	}
	if (strlen(method) != (size_t)json_object_get_string_len(json_object_object_get(o, "method")) ||
	    !varlink_method_split(method, NULL, NULL)) {
		why = "\"method\" is not \"interface.Method\"";
		goto fail;
	}
	if (more && oneway) {
		why = "\"more\" and \"oneway\" together";
		goto fail;
	}
	*ret = (VarlinkCall){
		.method = strdup(method),
		.parameters = params ? json_object_get(params) : json_object_new_object(),
		.more = more,
		.oneway = oneway,
	};
	json_object_put(o);
	if (!ret->method || !ret->parameters) {
		varlink_call_done(ret);
		return -ENOMEM;
	}
	return 0;
fail:
	json_object_put(o);
	if (ret_why)
		*ret_why = why;
	return r;
}

void varlink_reply_done(VarlinkReply *r)
{
	json_object_put(r->parameters);
	free(r->error);
	*r = (VarlinkReply){};
}

int varlink_reply_parse(const char *data, size_t size, VarlinkReply *ret, const char **ret_why)
{
	const char *why = NULL, *error = NULL;
	json_object *o = NULL, *params = NULL;
	bool continues = false;
	int r;

	r = json_parse_object(data, size, &o, &why);
	if (r < 0)
		goto fail;
	r = -EBADMSG;
	json_object_object_foreach(o, key, val) {
		if (streq(key, "parameters")) {
			if (json_object_is_type(val, json_type_null))
				continue;
			if (!json_object_is_type(val, json_type_object)) {
				why = "\"parameters\" is not an object";
				goto fail;
			}
			params = val;
		} else if (streq(key, "error")) {
			if (!json_object_is_type(val, json_type_string) ||
			    !varlink_method_split(json_object_get_string(val), NULL, NULL)) {
				why = "\"error\" is not \"interface.Error\"";
				goto fail;
			}
			error = json_object_get_string(val);
		} else if (streq(key, "continues")) {
			if (!json_object_is_type(val, json_type_boolean)) {
				why = "\"continues\" is not a boolean";
				goto fail;
			}
			continues = json_object_get_boolean(val);
		} else {
			why = "unknown member in the reply";
			goto fail;
		}
	}
	*ret = (VarlinkReply){
		.parameters = params ? json_object_get(params) : json_object_new_object(),
		.error = error ? strdup(error) : NULL,
		.continues = continues,
	};
	json_object_put(o);
	if (!ret->parameters || (error && !ret->error)) {
		varlink_reply_done(ret);
		return -ENOMEM;
	}
	return 0;
fail:
	json_object_put(o);
	if (ret_why)
		*ret_why = why;
	return r;
}

/* ---- formatting ---- */

static char *format_object(json_object *o)
{
	const char *s;
	char *copy;

	if (!o)
		return NULL;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	copy = s ? strdup(s) : NULL;
	json_object_put(o);
	return copy;
}

static json_object *params_or_empty(json_object *parameters)
{
	return parameters ? json_object_get(parameters) : json_object_new_object();
}

char *varlink_format_call(const char *method, json_object *parameters, bool more, bool oneway)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "method", json_object_new_string(method));
	json_object_object_add(o, "parameters", params_or_empty(parameters));
	if (more)
		json_object_object_add(o, "more", json_object_new_boolean(true));
	if (oneway)
		json_object_object_add(o, "oneway", json_object_new_boolean(true));
	return format_object(o);
}

char *varlink_format_reply(json_object *parameters, bool continues)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "parameters", params_or_empty(parameters));
	if (continues)
		json_object_object_add(o, "continues", json_object_new_boolean(true));
	return format_object(o);
}

char *varlink_format_error(const char *error, json_object *parameters)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "error", json_object_new_string(error));
	json_object_object_add(o, "parameters", params_or_empty(parameters));
	return format_object(o);
}

/* ---- parameters ---- */

int varlink_param_string(json_object *params, const char *key, const char **ret)
{
	json_object *v;

	if (!json_object_object_get_ex(params, key, &v) || json_object_is_type(v, json_type_null))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_string))
		return -EBADMSG;
	if ((size_t)json_object_get_string_len(v) != strlen(json_object_get_string(v)))
		return -EBADMSG; /* embedded NUL */
	*ret = json_object_get_string(v);
	return 0;
}

int varlink_param_bool(json_object *params, const char *key, bool *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(params, key, &v) || json_object_is_type(v, json_type_null))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_boolean))
		return -EBADMSG;
	*ret = json_object_get_boolean(v);
	return 0;
}

int varlink_param_strv(json_object *params, const char *key, size_t max_n, size_t max_len,
		       char ***ret)
{
	_cleanup_strv_free_ char **l = NULL;
	json_object *v;
	size_t n;
	int r;

	if (!json_object_object_get_ex(params, key, &v) || json_object_is_type(v, json_type_null))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_array))
		return -EBADMSG;
	n = json_object_array_length(v);
	if (n > max_n)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		const char *s;

		if (!json_object_is_type(e, json_type_string))
			return -EBADMSG;
		s = json_object_get_string(e);
		if (!*s || strlen(s) > max_len ||
		    strlen(s) != (size_t)json_object_get_string_len(e))
			return -EBADMSG;
		r = strv_extend(&l, s);
		if (r < 0)
			return r;
	}
	if (!l) {
		l = calloc(1, sizeof(char *));
		if (!l)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(l);
	return 0;
}

/* ---- client ---- */

char *varlink_socket_path(const char *root)
{
	char *p;

	if (asprintf(&p, "%s/run/kmodd/io.kmodd", streq(root ?: "/", "/") ? "" : root) < 0)
		return NULL;
	return p;
}

int varlink_connect(const char *path, int *ret_fd)
{
	_cleanup_close_ int fd = -EBADF;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return negative_errno();
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int varlink_send(int fd, const char *msg)
{
	size_t n = strlen(msg) + 1, done = 0;

	while (done < n) {
		ssize_t k = send(fd, msg + done, n - done, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		done += k;
	}
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int varlink_recv(int fd, VarlinkBuffer *b, int timeout_ms, VarlinkReply *ret)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	for (;;) {
		_cleanup_free_ char *msg = NULL;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char buf[16384];
		ssize_t k;
		int r, wait;

		r = varlink_buffer_next(b, &msg, NULL);
		if (r < 0)
			return r;
		if (r > 0) {
			r = varlink_reply_parse(msg, strlen(msg), ret, NULL);
			if (r < 0)
				log_debug("varlink: malformed reply: %s", msg);
			return r;
		}
		wait = deadline < 0 ? -1 : (int)(deadline - now_ms());
		if (deadline >= 0 && wait <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return negative_errno();
		if (r == 0)
			return -ETIMEDOUT;
		k = recv(fd, buf, sizeof(buf), 0);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			return -ECONNRESET;
		r = varlink_buffer_feed(b, buf, k);
		if (r < 0)
			return r;
	}
}

int varlink_call_simple(const char *path, const char *method, json_object *parameters,
			int timeout_ms, VarlinkReply *ret)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *msg = NULL;
	VarlinkBuffer b = { .max = 16u * 1024 * 1024 };
	int r;

	r = varlink_connect(path, &fd);
	if (r < 0)
		return r;
	msg = varlink_format_call(method, parameters, false, false);
	if (!msg)
		return -ENOMEM;
	r = varlink_send(fd, msg);
	if (r < 0)
		return r;
	r = varlink_recv(fd, &b, timeout_ms, ret);
	varlink_buffer_done(&b);
	return r;
}

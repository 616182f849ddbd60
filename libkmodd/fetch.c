/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <curl/curl.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#include "fetch.h"
#include "fileio.h"
#include "kmodd-cleanup.h"
#include "log.h"
#include "sha256.h"

typedef struct FetchState {
	const FetchOptions *options;
	const char *url;
	uint64_t max_size;

	int fd; /* the temporary file, or -EBADF when fetching into memory */
	char *data;
	size_t allocated;

	uint64_t size;
	Sha256 sha256;
	bool too_big;
	int write_error;
} FetchState;

static void fetch_state_reset(FetchState *st)
{
	st->size = 0;
	st->too_big = false;
	st->write_error = 0;
	sha256_init(&st->sha256);
	if (st->fd >= 0) {
		(void)ftruncate(st->fd, 0);
		(void)lseek(st->fd, 0, SEEK_SET);
	}
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	FetchState *st = userdata;
	size_t n = size * nmemb;

	if (st->size + n > st->max_size) {
		st->too_big = true;
		return 0;
	}
	if (st->fd >= 0) {
		for (const char *p = ptr, *e = ptr + n; p < e;) {
			ssize_t k = write(st->fd, p, (size_t)(e - p));

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				st->write_error = negative_errno();
				return 0;
			}
			p += k;
		}
	} else {
		if (!GREEDY_REALLOC(st->data, st->allocated, st->size + n + 1)) {
			st->write_error = -ENOMEM;
			return 0;
		}
		memcpy(st->data + st->size, ptr, n);
		st->data[st->size + n] = 0;
	}
	sha256_update(&st->sha256, ptr, n);
	st->size += n;
	return n;
}

static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	FetchState *st = userdata;

	st->options->progress(st->options->userdata, st->url, (uint64_t)dlnow,
			      dltotal > 0 ? (uint64_t)dltotal : 0);
	return 0;
}

static const char *url_scheme(const char *url)
{
	if (startswith(url, "http://"))
		return "http";
	if (startswith(url, "https://"))
		return "https";
	if (startswith(url, "file://"))
		return "file";
	return NULL;
}

/* The one place where libcurl's result becomes an errno and a sentence. */
static int fetch_result_to_errno(CURL *c, CURLcode cc, const FetchState *st,
				 char **ret_msg)
{
	long http = 0, os_errno = 0;
	curl_off_t expected = -1;
	int r;

	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
	(void)curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
	(void)curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);

	switch (cc) {
	case CURLE_OK:
		if (http >= 300 && http < 400) {
			*ret_msg = strdup("redirect without a usable target");
			return -EPROTO;
		}
		return 0;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		*ret_msg = strdup("cannot resolve the host name");
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		r = os_errno == EHOSTUNREACH || os_errno == ENETUNREACH ? -EHOSTUNREACH :
									  -ECONNREFUSED;
		*ret_msg = strdup(r == -EHOSTUNREACH ?
					  "host unreachable" :
					  "cannot connect (connection refused)");
		return r;
	case CURLE_OPERATION_TIMEDOUT:
		*ret_msg = strdup("timed out");
		return -ETIMEDOUT;
	case CURLE_HTTP_RETURNED_ERROR:
		if (asprintf(ret_msg, "server returned HTTP %ld%s", http,
			     http == 404 ? " (not found)" : "") < 0)
			*ret_msg = NULL;
		return http == 404 || http == 410 ? -ENOENT : -EPROTO;
	case CURLE_FILE_COULDNT_READ_FILE:
		*ret_msg = strdup("no such file, or not readable");
		return -ENOENT;
	case CURLE_REMOTE_FILE_NOT_FOUND:
		*ret_msg = strdup("not found");
		return -ENOENT;
	case CURLE_FILESIZE_EXCEEDED:
		if (asprintf(ret_msg, "larger than the limit of %" PRIu64 " bytes",
			     st->max_size) < 0)
			*ret_msg = NULL;
		return -EFBIG;
	case CURLE_WRITE_ERROR:
		if (st->too_big) {
			if (asprintf(ret_msg, "larger than the limit of %" PRIu64 " bytes",
				     st->max_size) < 0)
				*ret_msg = NULL;
			return -EFBIG;
		}
		r = st->write_error < 0 ? st->write_error : -EIO;
		if (asprintf(ret_msg, "cannot write the download: %s", strerror(-r)) < 0)
			*ret_msg = NULL;
		return r;
	case CURLE_PARTIAL_FILE:
		if (expected > 0) {
			if (asprintf(ret_msg,
				     "transfer ended early: %" PRIu64 " of %" PRIu64
				     " bytes",
				     st->size, (uint64_t)expected) < 0)
				*ret_msg = NULL;
		} else
			*ret_msg = strdup("transfer ended early");
		return -EPIPE;
	case CURLE_UNSUPPORTED_PROTOCOL:
		*ret_msg =
			strdup(http >= 300 && http < 400 ?
				       "redirect to another scheme refused" :
				       "scheme not allowed (http, https and file only)");
		return -EPROTO;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		*ret_msg = strdup("TLS certificate not trusted (for a private CA, set sslcacert=)");
		return -EPROTO;
	case CURLE_SSL_CONNECT_ERROR:
		if (asprintf(ret_msg, "TLS handshake failed (%s)", curl_easy_strerror(cc)) < 0)
			*ret_msg = NULL;
		return -EPROTO;
	case CURLE_TOO_MANY_REDIRECTS:
		*ret_msg = strdup("too many redirects");
		return -EPROTO;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		if (asprintf(ret_msg, "connection lost (%s)", curl_easy_strerror(cc)) < 0)
			*ret_msg = NULL;
		return -ECONNRESET;
	case CURLE_OUT_OF_MEMORY:
		*ret_msg = strdup("out of memory");
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
		*ret_msg = strdup("malformed URL");
		return -EINVAL;
	case CURLE_ABORTED_BY_CALLBACK:
		*ret_msg = strdup("cancelled");
		return -ECANCELED;
	default:
		if (asprintf(ret_msg, "%s", curl_easy_strerror(cc)) < 0)
			*ret_msg = NULL;
		return -EPROTO;
	}
}

static bool fetch_error_transient(int r, long http)
{
	if (r == -EPROTO)
		return http >= 500 || http == 408 || http == 429;
	return r == -ECONNREFUSED || r == -ECONNRESET || r == -ETIMEDOUT || r == -EPIPE ||
	       r == -EHOSTUNREACH;
}

static int fetch_once(CURL *c, FetchState *st, long *ret_http, char **ret_msg)
{
	CURLcode cc;

	fetch_state_reset(st);
	cc = curl_easy_perform(c);
	*ret_http = 0;
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_http);
	log_debug("fetch %s: curl %d (%s), HTTP %ld, %" PRIu64 " bytes", st->url, (int)cc,
		  curl_easy_strerror(cc), *ret_http, st->size);
	return fetch_result_to_errno(c, cc, st, ret_msg);
}

static int fetch_run(const char *url, FetchState *st, char **ret_error)
{
	const FetchOptions *o = st->options;
	_cleanup_(curl_easy_cleanupp) CURL *c = NULL;
	_cleanup_free_ char *msg = NULL;
	const char *scheme;
	unsigned delay_ms = 250;
	long http = 0;
	int r;

	scheme = url_scheme(url);
	if (!scheme) {
		if (ret_error)
			*ret_error =
				strdup("scheme not allowed (http, https and file only)");
		return -EPROTO;
	}

	c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, scheme) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, scheme) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_USERAGENT, "kmodd/" PACKAGE_VERSION) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
			     (long)(o->connect_timeout_s ?: 10)) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
			     (long)(o->low_speed_time_s ?: 30)) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)st->max_size) !=
		    CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, st) != CURLE_OK)
		return -EINVAL;
	if (o->ca_file && curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file) != CURLE_OK)
		return -EINVAL;
	if (o->progress &&
	    (curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb) != CURLE_OK ||
	     curl_easy_setopt(c, CURLOPT_XFERINFODATA, st) != CURLE_OK ||
	     curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) != CURLE_OK))
		return -EINVAL;

	for (unsigned attempt = 0;; attempt++) {
		free(msg);
		msg = NULL;
		r = fetch_once(c, st, &http, &msg);
		if (r >= 0 || attempt >= o->retries || !fetch_error_transient(r, http))
			break;
		log_debug("fetch %s: %s, retrying in %u ms", url, strna(msg), delay_ms);
		(void)nanosleep(&(struct timespec){ .tv_sec = delay_ms / 1000,
						    .tv_nsec = (long)(delay_ms % 1000) *
							       1000000 },
				NULL);
		delay_ms = delay_ms * 2 > 8000 ? 8000 : delay_ms * 2;
	}
	if (r < 0) {
		if (ret_error)
			*ret_error = TAKE_PTR(msg);
		return r;
	}

	if (o->sha256) {
		char got[SHA256_HEX_SIZE];

		sha256_finish_hex(&st->sha256, got);
		if (strcasecmp(got, o->sha256) != 0) {
			log_debug("fetch %s: sha256 %s, expected %s", url, got, o->sha256);
			if (ret_error &&
			    asprintf(ret_error,
				     "checksum mismatch (sha256 %s, expected %s)", got,
				     o->sha256) < 0)
				*ret_error = NULL;
			return -EBADMSG;
		}
	}
	return 0;
}

int fetch_to_file(const char *url, const char *dest, const FetchOptions *o,
		  char **ret_error)
{
	static const FetchOptions defaults = {};
	_cleanup_free_ char *tmp = NULL, *dir = NULL;
	_cleanup_close_ int fd = -EBADF;
	const char *base;
	FetchState st = {};
	int r;

	o = o ?: &defaults;
	base = strrchr(dest, '/');
	dir = base ? strndup(dest, (size_t)(base - dest)) : strdup(".");
	if (!dir)
		return -ENOMEM;
	if (asprintf(&tmp, "%s/.#%s.XXXXXX", isempty(dir) ? "/" : dir,
		     base ? base + 1 : dest) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = negative_errno();
		if (ret_error && asprintf(ret_error, "cannot create a file in %s: %s",
					  dir, strerror(-r)) < 0)
			*ret_error = NULL;
		return r;
	}

	st = (FetchState){
		.options = o,
		.url = url,
		.max_size = o->max_size ?: FETCH_DEFAULT_MAX_SIZE,
		.fd = fd,
	};
	r = fetch_run(url, &st, ret_error);
	if (r < 0)
		goto fail;

	if (fchmod(fd, 0644) < 0 || fsync(fd) < 0 || rename(tmp, dest) < 0) {
		r = negative_errno();
		if (ret_error &&
		    asprintf(ret_error, "cannot write %s: %s", dest, strerror(-r)) < 0)
			*ret_error = NULL;
		goto fail;
	}
	(void)fsync_directory_of(dest);
	return 0;
fail:
	(void)unlink(tmp);
	return r;
}

int fetch_to_memory(const char *url, const FetchOptions *o, char **ret_data,
		    size_t *ret_size, char **ret_error)
{
	static const FetchOptions defaults = {};
	FetchState st;
	int r;

	o = o ?: &defaults;
	st = (FetchState){
		.options = o,
		.url = url,
		.max_size = o->max_size ?: FETCH_DEFAULT_MAX_SIZE,
		.fd = -EBADF,
	};
	r = fetch_run(url, &st, ret_error);
	if (r < 0) {
		free(st.data);
		return r;
	}
	if (!st.data && !(st.data = calloc(1, 1)))
		return -ENOMEM;
	*ret_data = st.data;
	if (ret_size)
		*ret_size = (size_t)st.size;
	return 0;
}

int sha256_file(const char *path, char ret[static 65])
{
	_cleanup_close_ int fd = -EBADF;
	uint8_t buf[64 * 1024];
	Sha256 s;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	sha256_init(&s);
	for (;;) {
		ssize_t k = read(fd, buf, sizeof(buf));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			break;
		sha256_update(&s, buf, (size_t)k);
	}
	sha256_finish_hex(&s, ret);
	return 0;
}

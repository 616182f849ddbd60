/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* .repo files: parsing, loading, adding and removing repositories. */
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "fileio.h"
#include "package.h"
#include "repo.h"
#include "strv.h"

#define REPO_FILE_MAX_SIZE (1024u * 1024)
#define REPO_FILE_MAX_SECTIONS 1024

void repo_config_done(RepoConfig *c)
{
	free(c->id);
	free(c->name);
	free(c->baseurl);
	free(c->gpgkey);
	free(c->file);
	free(c->sslcacert);
	*c = (RepoConfig){};
}

void repo_configs_free(RepoConfig *c, size_t n)
{
	if (!c)
		return;
	for (size_t i = 0; i < n; i++)
		repo_config_done(&c[i]);
	free(c);
}

bool repo_id_valid(const char *id)
{
	size_t n = 0;

	if (isempty(id) || id[0] == '.' || id[0] == '-')
		return false;
	for (const char *p = id; *p; p++, n++)
		if (!isalnum((unsigned char)*p) && !strchr("._-:+@", *p))
			return false;
	return n <= 100;
}

bool repo_url_valid(const char *url)
{
	const char *rest;

	if (!url)
		return false;
	rest = startswith(url, "http://")	   ?:
		       startswith(url, "https://") ?:
						     startswith(url, "file://");
	if (isempty(rest) || strlen(url) > 4096)
		return false;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static int warn(char ***warnings, const char *file, unsigned line, const char *fmt, ...)
	_printf_(4, 5);
static int warn(char ***warnings, const char *file, unsigned line, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	char *s;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	if (line > 0)
		r = asprintf(&s, "%s:%u: %s", file, line, msg);
	else
		r = asprintf(&s, "%s: %s", file, msg);
	if (r < 0)
		return -ENOMEM;
	return strv_consume(warnings, s);
}

static int parse_bool(const char *v)
{
	static const char *const yes[] = { "1", "yes", "true", "on", "enabled" };
	static const char *const no[] = { "0", "no", "false", "off", "disabled" };

	for (size_t i = 0; i < ELEMENTSOF(yes); i++)
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
	for (size_t i = 0; i < ELEMENTSOF(no); i++)
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	return -EINVAL;
}

static int parse_priority(const char *v, int *ret)
{
	char *end;
	long l;

	if (isempty(v))
		return -EINVAL;
	errno = 0;
	l = strtol(v, &end, 10);
	if (errno != 0 || *end || l < 1 || l > 99)
		return -ERANGE;
	*ret = (int)l;
	return 0;
}

/* The first whitespace-separated word of v (dnf allows a list of URLs). */
static char *first_word(const char *v, bool *ret_more)
{
	size_t n = strcspn(v, " \t,");
	const char *rest = v + n;

	rest += strspn(rest, " \t,");
	*ret_more = *rest != 0;
	return strndup(v, n);
}

/* Keys other tools write that we accept and ignore. */
static const char *const ignored_keys[] = {
	"type",
	"autorefresh",
	"keeppackages",
	"path",
	"metadata_expire",
	"repo_gpgcheck",
	"pkg_gpgcheck",
	"skip_if_unavailable",
	"sslverify",
	"cost",
	"module_hotfixes",
	"countme",
	"service",
	"mirrorlist",
	"metalink",
	"failovermethod",
	"proxy",
	"excludepkgs",
	"includepkgs",
	"exclude",
	"includes",
	"keepcache",
	"deltarpm",
	"enabled_metadata",
	"gpgkey_dns_verification",
	"timeout",
	"throttle",
	"bandwidth",
	"minrate",
	"retries",
	"username",
	"password",
	"sslclientcert",
	"sslclientkey",
};

typedef struct Section {
	RepoConfig c;
	unsigned line;
	bool has_baseurl;
} Section;

static void section_drop(Section *s)
{
	repo_config_done(&s->c);
	*s = (Section){};
}

static int section_finish(Section *s, RepoConfig **configs, size_t *n, size_t *allocated,
			  const char *file, char ***warnings)
{
	if (!s->c.id)
		return 0;
	if (!s->has_baseurl) {
		int r = warn(warnings, file, s->line,
			     "repository '%s' has no valid baseurl=, ignoring", s->c.id);
		section_drop(s);
		return r;
	}
	for (size_t i = 0; i < *n; i++)
		if (streq((*configs)[i].id, s->c.id)) {
			int r = warn(
				warnings, file, s->line,
				"repository '%s' defined again in the same file, ignoring",
				s->c.id);
			section_drop(s);
			return r;
		}
	if (!GREEDY_REALLOC(*configs, *allocated, *n + 1))
		return -ENOMEM;
	(*configs)[(*n)++] = s->c;
	*s = (Section){};
	return 0;
}

static char *strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static int section_set(Section *s, const char *file, unsigned line, const char *key,
		       const char *value, char ***warnings)
{
	bool more = false;
	int r;

	if (streq(key, "name")) {
		char *v = strdup(value);
		if (!v)
			return -ENOMEM;
		free(s->c.name);
		s->c.name = v;
	} else if (streq(key, "baseurl")) {
		_cleanup_free_ char *u = first_word(value, &more);
		size_t l;

		if (!u)
			return -ENOMEM;
		if (!repo_url_valid(u))
			return warn(
				warnings, file, line,
				"baseurl '%s' is not an http, https or file URL, ignoring",
				u);
		if (strchr(u, '$'))
			return warn(
				warnings, file, line,
				"baseurl '%s' uses variables, which are not expanded, ignoring",
				u);
		/* "http://h/x/" -> "http://h/x"; "file:///" stays */
		l = strlen(u);
		while (l > (size_t)(strstr(u, "://") - u) + 4 && u[l - 1] == '/')
			u[--l] = 0;
		free(s->c.baseurl);
		s->c.baseurl = TAKE_PTR(u);
		s->has_baseurl = true;
		if (more)
			return warn(warnings, file, line,
				    "only the first baseurl is used, ignoring the others");
	} else if (streq(key, "gpgkey")) {
		_cleanup_free_ char *u = first_word(value, &more);

		if (!u)
			return -ENOMEM;
		if (!repo_url_valid(u) && u[0] != '/')
			return warn(
				warnings, file, line,
				"gpgkey '%s' is not an absolute path or an http, https or file "
				"URL, ignoring",
				u);
		free(s->c.gpgkey);
		s->c.gpgkey = TAKE_PTR(u);
		if (more)
			return warn(warnings, file, line,
				    "only the first gpgkey is used, ignoring the others");
	} else if (streq(key, "sslcacert")) {
		if (value[0] != '/')
			return warn(warnings, file, line,
				    "sslcacert '%s' is not an absolute path, ignoring", value);
		free(s->c.sslcacert);
		s->c.sslcacert = strdup(value);
		if (!s->c.sslcacert)
			return -ENOMEM;
	} else if (streq(key, "enabled") || streq(key, "gpgcheck")) {
		r = parse_bool(value);
		if (r < 0)
			return warn(warnings, file, line,
				    "%s=%s is not a boolean (0/1, yes/no), ignoring", key,
				    value);
		if (streq(key, "enabled"))
			s->c.enabled = r;
		else
			s->c.gpgcheck = r;
	} else if (streq(key, "priority")) {
		if (parse_priority(value, &s->c.priority) < 0)
			return warn(warnings, file, line,
				    "priority=%s is not a number from 1 to 99, ignoring",
				    value);
	} else {
		for (size_t i = 0; i < ELEMENTSOF(ignored_keys); i++)
			if (streq(key, ignored_keys[i]))
				return 0;
		return warn(warnings, file, line, "unknown key '%s', ignoring", key);
	}
	return 0;
}

int repo_config_parse(const char *file, const char *text, size_t size, RepoConfig **ret,
		      size_t *ret_n, char ***ret_warnings)
{
	_cleanup_strv_free_ char **warnings = NULL;
	RepoConfig *configs = NULL;
	size_t n = 0, allocated = 0, n_sections = 0;
	Section s = {};
	bool skipping = false; /* inside a section we refused */
	char *last_key = NULL; /* for continuation lines */
	unsigned line = 0;
	int r = 0;

	for (const char *p = text, *e = text + size; p < e; line++) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(e - p);
		_cleanup_free_ char *buf = NULL;
		char *l, *eq, *key, *value;
		bool continuation;

		buf = strndup(p, len);
		p += len + (nl ? 1 : 0);
		if (!buf) {
			r = -ENOMEM;
			goto finish;
		}
		if (strlen(buf) != len) {
			r = warn(&warnings, file, line + 1,
				 "NUL byte in line, ignoring the line");
			if (r < 0)
				goto finish;
			continue;
		}
		continuation = len > 0 && (buf[0] == ' ' || buf[0] == '\t');
		l = strip(buf);
		if (*l == 0 || *l == '#' || *l == ';')
			continue;

		if (*l == '[') {
			char *close = strchr(l, ']');

			free(last_key);
			last_key = NULL;
			r = section_finish(&s, &configs, &n, &allocated, file, &warnings);
			if (r < 0)
				goto finish;
			skipping = true;
			if (!close || !isempty(strip(close + 1))) {
				r = warn(&warnings, file, line + 1,
					 "expected '[id]', ignoring this section");
				if (r < 0)
					goto finish;
				continue;
			}
			*close = 0;
			l = strip(l + 1);
			if (!repo_id_valid(l)) {
				r = warn(&warnings, file, line + 1,
					 "invalid repository id '%s' (letters, digits and ._-:+@), "
					 "ignoring this section",
					 l);
				if (r < 0)
					goto finish;
				continue;
			}
			if (++n_sections > REPO_FILE_MAX_SECTIONS) {
				r = warn(&warnings, file, line + 1,
					 "more than %u repositories in one file, ignoring the rest",
					 REPO_FILE_MAX_SECTIONS);
				goto finish;
			}
			skipping = false;
			s = (Section){
				.c = { .id = strdup(l),
				       .file = strdup(file),
				       .enabled = true,
				       .gpgcheck = true,
				       .priority = 99 },
				.line = line + 1,
			};
			if (!s.c.id || !s.c.file) {
				r = -ENOMEM;
				goto finish;
			}
			continue;
		}

		if (continuation && last_key && s.c.id && !skipping) {
			/* a further value of a list key (dnf): only the first one is used */
			if (streq(last_key, "baseurl") || streq(last_key, "gpgkey")) {
				r = warn(&warnings, file, line + 1,
					 "only the first %s is used, ignoring '%s'",
					 last_key, l);
				if (r < 0)
					goto finish;
			}
			continue;
		}

		eq = strchr(l, '=');
		if (!eq) {
			r = warn(&warnings, file, line + 1,
				 "expected 'key=value', ignoring the line");
			if (r < 0)
				goto finish;
			continue;
		}
		*eq = 0;
		key = strip(l);
		value = strip(eq + 1);
		if (skipping)
			continue;
		if (!s.c.id) {
			r = warn(&warnings, file, line + 1,
				 "'%s=' before the first [id] section, ignoring the line",
				 key);
			if (r < 0)
				goto finish;
			continue;
		}
		free(last_key);
		last_key = strdup(key);
		if (!last_key) {
			r = -ENOMEM;
			goto finish;
		}
		if (isempty(value) && (streq(key, "baseurl") || streq(key, "gpgkey"))) {
			r = warn(&warnings, file, line + 1, "%s= is empty, ignoring", key);
			if (r < 0)
				goto finish;
			continue;
		}
		r = section_set(&s, file, line + 1, key, value, &warnings);
		if (r < 0)
			goto finish;
	}
	r = section_finish(&s, &configs, &n, &allocated, file, &warnings);

finish:
	free(last_key);
	section_drop(&s);
	if (r < 0) {
		repo_configs_free(configs, n);
		return r;
	}
	*ret = configs;
	*ret_n = n;
	if (ret_warnings)
		*ret_warnings = TAKE_PTR(warnings);
	return 0;
}

static int repo_file_list(const char *dir, char ***ret)
{
	_cleanup_strv_free_ char **files = NULL;
	DIR *d;
	struct dirent *de;

	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT) {
			*ret = NULL;
			return 0;
		}
		return negative_errno();
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !endswith(de->d_name, ".repo"))
			continue;
		if (strv_consume(&files, path_join(dir, de->d_name)) < 0) {
			closedir(d);
			return -ENOMEM;
		}
	}
	closedir(d);
	strv_sort(files);
	*ret = TAKE_PTR(files);
	return 0;
}

int repo_configs_load(const char *root, RepoConfig **ret, size_t *ret_n,
		      char ***ret_warnings)
{
	_cleanup_strv_free_ char **files = NULL, **warnings = NULL;
	_cleanup_free_ char *dir = NULL;
	RepoConfig *all = NULL;
	size_t n_all = 0, allocated = 0;
	int r;

	dir = kmodd_path_repos_d(root);
	if (!dir)
		return -ENOMEM;
	r = repo_file_list(dir, &files);
	if (r < 0)
		return r;

	STRV_FOREACH(f, files) {
		_cleanup_strv_free_ char **w = NULL;
		_cleanup_free_ char *text = NULL;
		RepoConfig *c = NULL;
		size_t size = 0, n = 0;

		r = read_full_file(*f, REPO_FILE_MAX_SIZE, &text, &size);
		if (r < 0) {
			r = warn(&warnings, *f, 0, "cannot read: %s, ignoring",
				 strerror(-r));
			if (r < 0)
				goto fail;
			continue;
		}
		r = repo_config_parse(*f, text, size, &c, &n, &w);
		if (r < 0)
			goto fail;
		STRV_FOREACH(s, w)
			if (strv_extend(&warnings, *s) < 0) {
				repo_configs_free(c, n);
				r = -ENOMEM;
				goto fail;
			}
		for (size_t i = 0; i < n; i++) {
			const char *dup = NULL;

			for (size_t j = 0; j < n_all && !dup; j++)
				if (streq(all[j].id, c[i].id))
					dup = all[j].file;
			if (dup || !GREEDY_REALLOC(all, allocated, n_all + 1)) {
				if (!dup ||
				    warn(&warnings, *f, 0,
					 "repository '%s' is already defined in %s, ignoring",
					 c[i].id, dup) < 0) {
					repo_configs_free(c + i, n - i);
					free(c);
					r = -ENOMEM;
					goto fail;
				}
				repo_config_done(&c[i]);
				continue;
			}
			all[n_all++] = c[i];
		}
		free(c);
	}

	*ret = all;
	*ret_n = n_all;
	if (ret_warnings)
		*ret_warnings = TAKE_PTR(warnings);
	return 0;
fail:
	repo_configs_free(all, n_all);
	return r;
}

const RepoConfig *repo_configs_find(const RepoConfig *c, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (streq(c[i].id, id))
			return &c[i];
	return NULL;
}

int repo_config_add(const char *root, const RepoConfig *c, char **ret_path)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL, *file = NULL;
	RepoConfig *configs = NULL;
	size_t n = 0;
	bool exists;
	int r;

	if (!repo_id_valid(c->id) || !repo_url_valid(c->baseurl) ||
	    (c->name && strpbrk(c->name, "\n\r")) ||
	    (c->gpgkey && !repo_url_valid(c->gpgkey) && c->gpgkey[0] != '/') ||
	    (c->sslcacert && (c->sslcacert[0] != '/' || strpbrk(c->sslcacert, "\r\n"))) ||
	    c->priority < 1 || c->priority > 99)
		return -EINVAL;

	r = repo_configs_load(root, &configs, &n, NULL);
	if (r < 0)
		return r;
	exists = repo_configs_find(configs, n, c->id);
	repo_configs_free(configs, n);
	if (exists)
		return -EEXIST;

	dir = kmodd_path_repos_d(root);
	if (!dir || asprintf(&file, "%s.repo", c->id) < 0)
		return -ENOMEM;
	path = path_join(dir, file);
	if (!path)
		return -ENOMEM;
	if (access(path, F_OK) == 0)
		return -EEXIST;
	if (asprintf(&text,
		     "[%s]\n"
		     "name=%s\n"
		     "baseurl=%s\n"
		     "enabled=%d\n"
		     "gpgcheck=%d\n"
		     "%s%s%s"
		     "%s%s%s"
		     "priority=%d\n",
		     c->id, c->name ?: c->id, c->baseurl, c->enabled, c->gpgcheck,
		     c->gpgkey ? "gpgkey=" : "", strempty(c->gpgkey),
		     c->gpgkey ? "\n" : "", c->sslcacert ? "sslcacert=" : "",
		     strempty(c->sslcacert), c->sslcacert ? "\n" : "", c->priority) < 0)
		return -ENOMEM;
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return r;
	r = write_file_atomic(path, text, strlen(text), 0644);
	if (r < 0)
		return r;
	if (ret_path)
		*ret_path = TAKE_PTR(path);
	return 0;
}

/* The text of a .repo file without section id; *ret_empty when no section is left. */
static int repo_text_without(const char *text, const char *id, char **ret, bool *ret_empty)
{
	_cleanup_free_ char *out = NULL;
	size_t n = 0, allocated = 0;
	bool dropping = false, empty = true;

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
		_cleanup_free_ char *l = strndup(p, len);
		char *s;

		if (!l)
			return -ENOMEM;
		s = strip(l);
		if (*s == '[') {
			char *close = strchr(s, ']');

			if (close) {
				*close = 0;
				dropping = streq(strip(s + 1), id);
			} else
				dropping = false;
			if (!dropping)
				empty = false;
		}
		if (!dropping) {
			if (!GREEDY_REALLOC(out, allocated, n + len + 1))
				return -ENOMEM;
			memcpy(out + n, p, len);
			n += len;
			out[n] = 0;
		}
		p += len;
	}
	if (!out && !(out = strdup("")))
		return -ENOMEM;
	*ret = TAKE_PTR(out);
	*ret_empty = empty;
	return 0;
}

int repo_config_remove(const char *root, const char *id, char **ret_path)
{
	_cleanup_free_ char *text = NULL, *rest = NULL, *path = NULL;
	RepoConfig *configs = NULL;
	const RepoConfig *c;
	size_t n = 0;
	bool empty;
	int r;

	r = repo_configs_load(root, &configs, &n, NULL);
	if (r < 0)
		return r;
	c = repo_configs_find(configs, n, id);
	path = c ? strdup(c->file) : NULL;
	repo_configs_free(configs, n);
	if (!c)
		return -ENOENT;
	if (!path)
		return -ENOMEM;

	r = read_full_file(path, REPO_FILE_MAX_SIZE, &text, NULL);
	if (r < 0)
		return r;
	r = repo_text_without(text, id, &rest, &empty);
	if (r < 0)
		return r;
	if (empty) {
		if (unlink(path) < 0)
			return negative_errno();
		(void)fsync_directory_of(path);
	} else {
		r = write_file_atomic(path, rest, strlen(rest), 0644);
		if (r < 0)
			return r;
	}
	(void)repo_cache_remove(root, id);
	if (ret_path)
		*ret_path = TAKE_PTR(path);
	return 0;
}

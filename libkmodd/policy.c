/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>
#include <fnmatch.h>
#include <stdarg.h>

#include "fileio.h"
#include "package.h"
#include "policy.h"
#include "strv.h"

PolicySet *policy_set_free(PolicySet *s)
{
	if (!s)
		return NULL;
	free(s->name);
	free(s->description);
	strv_free(s->modules);
	strv_free(s->paths);
	free(s->file);
	free(s);
	return NULL;
}

void policy_sets_free(PolicySet **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		policy_set_free(l[i]);
	free(l);
}

static int warn(char ***warnings, const char *file, unsigned line, const char *fmt, ...)
	_printf_(4, 5);
static int warn(char ***warnings, const char *file, unsigned line, const char *fmt, ...)
{
	_cleanup_free_ char *what = NULL;
	char *s;
	va_list ap;
	int k;

	if (!warnings)
		return 0;
	va_start(ap, fmt);
	k = vasprintf(&what, fmt, ap);
	va_end(ap);
	if (k < 0)
		return -ENOMEM;
	if (line > 0)
		k = asprintf(&s, "%s:%u: %s", file, line, what);
	else
		k = asprintf(&s, "%s: %s", file, what);
	if (k < 0)
		return -ENOMEM;
	return strv_consume(warnings, s);
}

static bool name_valid(const char *s)
{
	if (isempty(s) || strlen(s) > 64)
		return false;
	for (const char *c = s; *c; c++)
		if (!(isalnum((unsigned char)*c) || strchr("-_.", *c)))
			return false;
	return s[0] != '.';
}

static bool glob_valid(const char *s)
{
	if (isempty(s) || strlen(s) > 255)
		return false;
	for (const char *c = s; *c; c++)
		if (!(isalnum((unsigned char)*c) || strchr("-_.*?[]!", *c)))
			return false;
	return true;
}

static bool path_valid(const char *s)
{
	_cleanup_strv_free_ char **parts = NULL;

	if (isempty(s) || strlen(s) > 1024 || s[0] == '/')
		return false;
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x21 || *c == 0x7f || *c == '\\')
			return false;
	if (strv_split(s, "/", &parts) < 0)
		return false;
	STRV_FOREACH(p, parts)
		if (streq(*p, "..") || streq(*p, "."))
			return false;
	return true;
}

static char *underscored(const char *s)
{
	char *n = strdup(s);

	for (char *c = n; c && *c; c++)
		if (*c == '-')
			*c = '_';
	return n;
}

/* Appends the words of value to *l (validated); empty value: clears the list. */
static int add_words(char ***l, const char *value, bool paths, const char *file,
		     unsigned line, char ***warnings)
{
	_cleanup_strv_free_ char **words = NULL;
	int k;

	if (isempty(value)) {
		*l = strv_free(*l);
		return 0;
	}
	k = strv_split(value, " \t", &words);
	if (k < 0)
		return k;
	STRV_FOREACH(w, words) {
		if (strv_length(*l) >= POLICY_MAX_ENTRIES) {
			k = warn(warnings, file, line,
				 "more than %u entries, ignoring the rest",
				 POLICY_MAX_ENTRIES);
			return k < 0 ? k : 0;
		}
		if (paths ? !path_valid(*w) : !glob_valid(*w)) {
			k = warn(warnings, file, line, "invalid %s '%s', ignoring",
				 paths ? "tree path" : "module name or glob", *w);
			if (k < 0)
				return k;
			continue;
		}
		k = strv_consume(l, paths ? strdup(*w) : underscored(*w));
		if (k < 0)
			return k;
	}
	return 0;
}

int policy_set_parse(const char *file, const char *text, size_t size, PolicySet **ret,
		     char ***ret_warnings)
{
	_cleanup_policy_set_free_ PolicySet *s = NULL;
	_cleanup_free_ char *copy = NULL;
	bool in_set = false, seen_set = false, seen_list = false;
	unsigned line = 0;
	char *p, *next;
	int k;

	if (size > POLICY_MAX_FILE_SIZE) {
		k = warn(ret_warnings, file, 0, "larger than %u bytes",
			 POLICY_MAX_FILE_SIZE);
		return k < 0 ? k : -EFBIG;
	}
	copy = malloc(size + 1);
	s = calloc(1, sizeof(*s));
	if (!copy || !s)
		return -ENOMEM;
	memcpy(copy, text, size);
	copy[size] = 0;
	s->file = strdup(file);
	if (!s->file)
		return -ENOMEM;

	for (p = copy; p && p < copy + size; p = next) {
		char *eq, *key, *value, *end;

		line++;
		next = memchr(p, '\n', (size_t)(copy + size - p));
		if (next)
			*next++ = 0;
		if (strlen(p) != (size_t)((next ? next - 1 : copy + size) - p)) {
			k = warn(ret_warnings, file, line, "NUL byte in line, ignoring");
			if (k < 0)
				return k;
			continue;
		}
		/* trim */
		p += strspn(p, " \t\r");
		end = p + strlen(p);
		while (end > p && strchr(" \t\r", end[-1]))
			*--end = 0;
		if (*p == 0 || *p == '#' || *p == ';')
			continue;

		if (*p == '[') {
			if (end[-1] != ']') {
				k = warn(ret_warnings, file, line,
					 "malformed section header '%s'", p);
				if (k < 0)
					return k;
				in_set = false;
				continue;
			}
			in_set = streq(p, "[Set]");
			if (in_set)
				seen_set = true;
			else {
				k = warn(ret_warnings, file, line,
					 "unknown section %s, ignoring", p);
				if (k < 0)
					return k;
			}
			continue;
		}
		if (!in_set) {
			k = warn(ret_warnings, file, line,
				 seen_set ?
					 "assignment in an unknown section, ignoring" :
					 "assignment outside of the [Set] section, ignoring");
			if (k < 0)
				return k;
			continue;
		}
		eq = strchr(p, '=');
		if (!eq) {
			k = warn(ret_warnings, file, line, "missing '=', ignoring");
			if (k < 0)
				return k;
			continue;
		}
		*eq = 0;
		key = p;
		value = eq + 1;
		for (char *c = eq; c > key && strchr(" \t", c[-1]);)
			*--c = 0;
		value += strspn(value, " \t");

		if (streq(key, "Name")) {
			if (!name_valid(value)) {
				k = warn(ret_warnings, file, line,
					 "invalid Name= '%s', ignoring", value);
				if (k < 0)
					return k;
				continue;
			}
			free(s->name);
			s->name = strdup(value);
			if (!s->name)
				return -ENOMEM;
		} else if (streq(key, "Description")) {
			if (strlen(value) > 1024) {
				k = warn(ret_warnings, file, line,
					 "Description= too long, ignoring");
				if (k < 0)
					return k;
				continue;
			}
			free(s->description);
			s->description = strdup(value);
			if (!s->description)
				return -ENOMEM;
		} else if (streq(key, "Modules") || streq(key, "Paths")) {
			k = add_words(streq(key, "Paths") ? &s->paths : &s->modules,
				      value, streq(key, "Paths"), file, line,
				      ret_warnings);
			if (k < 0)
				return k;
			seen_list = true;
		} else {
			k = warn(ret_warnings, file, line, "unknown key '%s', ignoring",
				 key);
			if (k < 0)
				return k;
		}
	}

	if (!seen_set || !seen_list) {
		k = warn(ret_warnings, file, 0, "%s",
			 !seen_set ? "no [Set] section" : "no Modules= or Paths=");
		return k < 0 ? k : -EINVAL;
	}
	if (!s->name) {
		/* the file name without directory and .set */
		const char *b = strrchr(file, '/');
		char *dot;

		s->name = strdup(b ? b + 1 : file);
		if (!s->name)
			return -ENOMEM;
		dot = strrchr(s->name, '.');
		if (dot && streq(dot, ".set"))
			*dot = 0;
		if (!name_valid(s->name)) {
			k = warn(ret_warnings, file, 0, "no usable name; add Name=");
			return k < 0 ? k : -EINVAL;
		}
	}
	*ret = TAKE_PTR(s);
	return 0;
}

static int set_load_file(const char *path, PolicySet **ret, char ***warnings)
{
	_cleanup_free_ char *data = NULL;
	size_t size = 0;
	int k;

	k = read_full_file(path, POLICY_MAX_FILE_SIZE, &data, &size);
	if (k < 0)
		return k;
	return policy_set_parse(path, data, size, ret, warnings);
}

/* The directories searched, in order of precedence. */
static int set_dirs(const char *root, char ***ret)
{
	_cleanup_strv_free_ char **l = NULL;

	for (int etc = 1; etc >= 0; etc--) {
		_cleanup_free_ char *base = kmodd_path_policies(root, etc);

		if (!base || strv_consume(&l, path_join(base, "sets")) < 0 ||
		    strv_extend(&l, base) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(l);
	return 0;
}

int policy_set_load(const char *root, const char *name, PolicySet **ret,
		    char ***ret_warnings)
{
	_cleanup_strv_free_ char **dirs = NULL;
	_cleanup_free_ char *file = NULL;
	int k;

	if (!name_valid(name))
		return -EINVAL;
	if (asprintf(&file, "%s.set", name) < 0)
		return -ENOMEM;
	k = set_dirs(root, &dirs);
	if (k < 0)
		return k;
	STRV_FOREACH(d, dirs) {
		_cleanup_free_ char *path = path_join(*d, file);

		if (!path)
			return -ENOMEM;
		k = set_load_file(path, ret, ret_warnings);
		if (k != -ENOENT)
			return k;
	}
	return -ENOENT;
}

static int cmp_set(const void *a, const void *b)
{
	return strcmp((*(PolicySet *const *)a)->name, (*(PolicySet *const *)b)->name);
}

int policy_sets_load(const char *root, PolicySet ***ret, size_t *ret_n,
		     char ***ret_warnings)
{
	_cleanup_strv_free_ char **dirs = NULL, **seen = NULL;
	PolicySet **l = NULL;
	size_t n = 0;
	int k;

	k = set_dirs(root, &dirs);
	if (k < 0)
		return k;
	STRV_FOREACH(d, dirs) {
		DIR *dir = opendir(*d);
		struct dirent *de;

		if (!dir)
			continue;
		while ((de = readdir(dir))) {
			_cleanup_free_ char *path = NULL;
			PolicySet *s = NULL, **nl;

			if (!endswith(de->d_name, ".set") || de->d_name[0] == '.' ||
			    strv_contains(seen, de->d_name))
				continue;
			if (strv_extend(&seen, de->d_name) < 0 ||
			    !(path = path_join(*d, de->d_name)))
				goto oom;
			if (set_load_file(path, &s, ret_warnings) < 0)
				continue;
			nl = reallocarray(l, n + 1, sizeof(PolicySet *));
			if (!nl) {
				policy_set_free(s);
				goto oom;
			}
			l = nl;
			l[n++] = s;
		}
		closedir(dir);
		continue;
oom:
		closedir(dir);
		policy_sets_free(l, n);
		return -ENOMEM;
	}
	if (n > 0)
		qsort(l, n, sizeof(PolicySet *), cmp_set);
	*ret = l;
	*ret_n = n;
	return 0;
}

bool policy_set_matches(const PolicySet *s, const char *module, const char *path)
{
	_cleanup_free_ char *name = module ? underscored(module) : NULL;

	if (name)
		STRV_FOREACH(g, s->modules)
			if (fnmatch(*g, name, 0) == 0)
				return true;
	if (path) {
		_cleanup_free_ char *intree = NULL;
		const char *rest;

		/* a KMP's updates/net/... or extra/net/... is the tree's kernel/net/... */
		if ((rest = startswith(path, "updates/")) ||
		    (rest = startswith(path, "extra/")) ||
		    (rest = startswith(path, "weak-updates/"))) {
			if (asprintf(&intree, "kernel/%s", rest) < 0)
				return false;
			path = intree;
		}
		STRV_FOREACH(p, s->paths) {
			if (endswith(*p, "/") ? startswith(path, *p) != NULL :
						streq(path, *p))
				return true;
		}
	}
	return false;
}

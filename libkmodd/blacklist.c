/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The watchdog blacklist, derived from each kernel's tree. */
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stddef.h>
#include <sys/stat.h>

#include "blacklist.h"
#include "daemon-config.h"
#include "fileio.h"
#include "package.h"
#include "strv.h"

#define TREE_DEPTH_MAX 16

static const char *const default_paths[] = { "drivers/watchdog/" };
/* watchdog drivers outside drivers/watchdog/ in 6.1 (and their usual names) */
static const char *const default_modules[] = { "ipmi_watchdog", "*_wdt", "wdt_*" };

char *module_name_normalize(char *name)
{
	for (char *p = name; *p; p++)
		if (*p == '-')
			*p = '_';
	return name;
}

void blacklist_policy_done(BlacklistPolicy *p)
{
	strv_free(p->paths);
	strv_free(p->modules);
	free(p->allow);
	free(p->file);
	*p = (BlacklistPolicy){};
}

static int policy_defaults(BlacklistPolicy *p)
{
	*p = (BlacklistPolicy){};
	for (size_t i = 0; i < ELEMENTSOF(default_paths); i++)
		if (strv_extend(&p->paths, default_paths[i]) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(default_modules); i++)
		if (strv_extend(&p->modules, default_modules[i]) < 0)
			return -ENOMEM;
	return 0;
}

static bool allow_valid(const char *value)
{
	if (strlen(value) > 64 || strpbrk(value, " \t/*?["))
		return false;
	for (const char *c = value; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return false;
	return true;
}

static int parse_allow(const char *value, void *dest)
{
	if (!allow_valid(value))
		return -EINVAL;
	return config_parse_string(value, dest);
}

static int parse_paths(const char *value, void *dest)
{
	_cleanup_strv_free_ char **words = NULL;
	int r;

	r = strv_split(value, " \t,", &words);
	if (r < 0)
		return r;
	STRV_FOREACH(w, words)
		if ((*w)[0] == '/' || strstr(*w, ".."))
			return -EINVAL;
	return config_parse_strv(value, dest);
}

static const ConfigItem policy_table[] = {
	{ "Blacklist", "Paths", parse_paths, offsetof(BlacklistPolicy, paths) },
	{ "Blacklist", "Modules", config_parse_strv, offsetof(BlacklistPolicy, modules) },
	{ "Blacklist", "Allow", parse_allow, offsetof(BlacklistPolicy, allow) },
};

int blacklist_policy_parse(BlacklistPolicy *p, const char *file, const char *text, size_t size,
			   char ***warnings)
{
	int r;

	if (!p->paths && !p->modules) {
		r = policy_defaults(p);
		if (r < 0)
			return r;
	}
	r = config_parse_table(policy_table, ELEMENTSOF(policy_table), p, file, text, size,
			       warnings);
	if (p->allow)
		module_name_normalize(p->allow);
	return r;
}

int blacklist_policy_load(const char *root, BlacklistPolicy *ret, char ***warnings)
{
	BlacklistPolicy p = {};
	int r;

	r = policy_defaults(&p);
	if (r < 0)
		goto fail;
	for (int etc = 1; etc >= 0; etc--) {
		_cleanup_free_ char *dir = kmodd_path_policies(root, etc), *path = NULL, *text = NULL;
		size_t size;

		if (!dir || !(path = path_join(dir, BLACKLIST_POLICY_FILE))) {
			r = -ENOMEM;
			goto fail;
		}
		r = read_full_file(path, 256 * 1024, &text, &size);
		if (r == -ENOENT)
			continue;
		if (r < 0) {
			char *s;

			if (asprintf(&s, "%s: cannot read: %s, ignoring", path, strerror(-r)) >= 0)
				(void)strv_consume(warnings, s);
			continue;
		}
		/* the file replaces the defaults' lists only where it sets them */
		r = blacklist_policy_parse(&p, path, text, size, warnings);
		if (r == -ENOMEM)
			goto fail;
		p.file = TAKE_PTR(path);
		break;
	}
	*ret = p;
	return 0;
fail:
	blacklist_policy_done(&p);
	return r;
}

int blacklist_policy_set_allow(const char *root, const BlacklistPolicy *p, const char *name,
			       char **ret_path)
{
	_cleanup_free_ char *dir = kmodd_path_policies(root, true), *path = NULL, *text = NULL,
			    *paths = NULL, *modules = NULL;
	int r;

	if (!dir)
		return -ENOMEM;
	if (name && (!*name || !allow_valid(name)))
		return -EINVAL;
	paths = strv_join(p->paths, " ");
	modules = strv_join(p->modules, " ");
	path = path_join(dir, BLACKLIST_POLICY_FILE);
	if (!paths || !modules || !path)
		return -ENOMEM;
	if (asprintf(&text,
		     "# Watchdog drivers are never loaded automatically; one may be allowed.\n"
		     "# Written by 'kmodctl watchdog'.\n"
		     "[Blacklist]\n"
		     "Paths=\nPaths=%s\n"
		     "Modules=\nModules=%s\n"
		     "Allow=%s\n",
		     paths, modules, strempty(name)) < 0)
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

/* ---- deriving the list ---- */

static bool module_file(const char *name, char *ret, size_t size)
{
	static const char *const suffixes[] = { ".ko", ".ko.xz", ".ko.zst", ".ko.gz" };

	for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
		if (endswith(name, suffixes[i])) {
			size_t n = strlen(name) - strlen(suffixes[i]);

			if (n == 0 || n >= size)
				return false;
			memcpy(ret, name, n);
			ret[n] = 0;
			module_name_normalize(ret);
			return true;
		}
	return false;
}

/* Does the tree-relative path (kernel/drivers/watchdog/x.ko) lie in one of the paths? */
static bool in_paths(const char *rel, char *const *paths)
{
	STRV_FOREACH(p, paths) {
		const char *s = *p;
		size_t n;

		while (*s == '/')
			s++;
		n = strlen(s);
		if (n == 0)
			continue;
		/* match at the start of any component: kernel/drivers/watchdog/, updates/drivers/... */
		for (const char *c = rel; c; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL)
			if (strncmp(c, s, n) == 0 && (s[n - 1] == '/' || c[n] == '/'))
				return true;
	}
	return false;
}

static bool name_matches(const char *module, char *const *modules)
{
	STRV_FOREACH(m, modules) {
		char pat[256];

		if (strlen(*m) >= sizeof(pat))
			continue;
		strcpy(pat, *m);
		module_name_normalize(pat);
		if (fnmatch(pat, module, 0) == 0)
			return true;
	}
	return false;
}

static int consider(const char *rel, const BlacklistPolicy *p, char ***list)
{
	const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	char name[256];

	if (!module_file(base, name, sizeof(name)))
		return 0;
	if (!in_paths(rel, p->paths) && !name_matches(name, p->modules))
		return 0;
	if (strv_contains(*list, name))
		return 0;
	return strv_extend(list, name);
}

static int walk(int dirfd, const char *rel, unsigned depth, const BlacklistPolicy *p,
		char ***list)
{
	DIR *d;
	struct dirent *de;
	int fd, r = 0;

	if (depth > TREE_DEPTH_MAX)
		return 0;
	fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 0 : negative_errno();
	d = fdopendir(fd);
	if (!d) {
		safe_close(fd);
		return negative_errno();
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *sub = NULL;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (asprintf(&sub, "%s/%s", rel, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		if (de->d_type == DT_DIR) {
			r = walk(dirfd, sub, depth + 1, p, list);
		} else if (de->d_type == DT_REG || de->d_type == DT_LNK ||
			   de->d_type == DT_UNKNOWN) {
			r = consider(sub, p, list);
		}
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

static int strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int blacklist_watchdog_modules(const char *root, const char *kver, const BlacklistPolicy *p,
			       char ***ret)
{
	static const char *const dirs[] = { "kernel", "updates", "extra", "weak-updates" };
	_cleanup_free_ char *moddir = NULL, *order = NULL, *text = NULL;
	_cleanup_strv_free_ char **list = NULL;
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (strchr(kver, '/') || streq(kver, "..") || streq(kver, "."))
		return -EINVAL;
	moddir = path_join(root, "lib/modules", kver);
	if (!moddir)
		return -ENOMEM;
	fd = open(moddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();

	/* modules.order: every module built for the kernel, installed or not */
	order = path_join(moddir, "modules.order");
	if (!order)
		return -ENOMEM;
	r = read_full_file(order, 16 * 1024 * 1024, &text, NULL);
	if (r >= 0) {
		char *save = NULL;

		for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			r = consider(l, p, &list);
			if (r < 0)
				return r;
		}
	} else if (r != -ENOENT)
		return r;

	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		r = walk(fd, dirs[i], 0, p, &list);
		if (r < 0)
			return r;
	}
	if (!list) {
		list = calloc(1, sizeof(char *));
		if (!list)
			return -ENOMEM;
	}
	qsort(list, strv_length(list), sizeof(char *), strcmp_ptr);
	*ret = TAKE_PTR(list);
	return 0;
}

int blacklist_kernels(const char *root, char ***ret)
{
	_cleanup_free_ char *dir = path_join(root, "lib/modules");
	_cleanup_strv_free_ char **l = NULL;
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (!dir)
		return -ENOMEM;
	d = opendir(dir);
	if (!d)
		return negative_errno();
	while ((de = readdir(d))) {
		_cleanup_free_ char *p = NULL, *q = NULL;

		if (de->d_name[0] == '.')
			continue;
		p = path_join(dir, de->d_name, "modules.order");
		q = path_join(dir, de->d_name, "kernel");
		if (!p || !q) {
			r = -ENOMEM;
			break;
		}
		if (access(p, F_OK) < 0 && access(q, F_OK) < 0)
			continue;
		r = strv_extend(&l, de->d_name);
		if (r < 0)
			break;
	}
	closedir(d);
	if (r < 0)
		return r;
	if (!l) {
		l = calloc(1, sizeof(char *));
		if (!l)
			return -ENOMEM;
	}
	qsort(l, strv_length(l), sizeof(char *), strcmp_ptr);
	*ret = TAKE_PTR(l);
	return 0;
}

int blacklist_write(const char *root, const char *dir, const BlacklistPolicy *p, size_t *ret_n)
{
	_cleanup_strv_free_ char **kernels = NULL, **all = NULL;
	_cleanup_free_ char *path = NULL, *dirpath = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	char *text = NULL;
	size_t size = 0, n = 0;
	int r;

	r = blacklist_kernels(root, &kernels);
	if (r < 0)
		return r;
	f = open_memstream(&text, &size);
	if (!f)
		return -ENOMEM;
	fprintf(f, "# Watchdog drivers are never loaded automatically: a watchdog nobody pets\n"
		   "# reboots the machine. Written by kmodd from each kernel's module tree; allow\n"
		   "# one with 'kmodctl watchdog allow NAME'.\n");
	if (p->allow)
		fprintf(f, "# allowed: %s\n", p->allow);
	STRV_FOREACH(k, kernels) {
		_cleanup_strv_free_ char **mods = NULL;
		size_t new = 0;

		r = blacklist_watchdog_modules(root, *k, p, &mods);
		if (r < 0)
			continue;
		STRV_FOREACH(m, mods)
			if (!strv_contains(all, *m))
				new++;
		fprintf(f, "\n# %s: %zu watchdog modules%s\n", *k, strv_length(mods),
			new < strv_length(mods) ? " (names listed once)" : "");
		STRV_FOREACH(m, mods) {
			if (strv_contains(all, *m))
				continue;
			r = strv_extend(&all, *m);
			if (r < 0) {
				fclose(TAKE_PTR(f));
				free(text);
				return r;
			}
			if (p->allow && streq(*m, p->allow)) {
				fprintf(f, "# %s allowed by the administrator\n", *m);
				continue;
			}
			fprintf(f, "blacklist %s\n", *m);
			n++;
		}
	}
	if (fclose(TAKE_PTR(f)) != 0) {
		free(text);
		return -ENOMEM;
	}
	dirpath = path_join(root, dir);
	path = path_join(root, dir, BLACKLIST_MODPROBE_FILE);
	if (!dirpath || !path) {
		free(text);
		return -ENOMEM;
	}
	r = mkdir_p(dirpath, 0755);
	if (r >= 0)
		r = write_file_atomic(path, text, size, 0644);
	free(text);
	if (r < 0)
		return r;
	if (ret_n)
		*ret_n = n;
	return 0;
}

bool blacklist_contains(char *const *watchdogs, const BlacklistPolicy *p, const char *module)
{
	char name[256];

	if (strlen(module) >= sizeof(name))
		return false;
	strcpy(name, module);
	module_name_normalize(name);
	if (p->allow && streq(p->allow, name))
		return false;
	return strv_contains(watchdogs, name) || name_matches(name, p->modules);
}

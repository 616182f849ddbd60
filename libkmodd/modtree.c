/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fileio.h"
#include "kmodd-cleanup.h"
#include "log.h"
#include "modtree.h"
#include "strv.h"

static void symbols_free(SymbolCrc *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].symbol);
	free(s);
}

Module *module_free(Module *m)
{
	if (!m)
		return NULL;
	free(m->name);
	free(m->path);
	strv_free(m->aliases);
	strv_free(m->depends);
	strv_free(m->softdeps);
	strv_free(m->firmware);
	free(m->vermagic);
	free(m->license);
	free(m->description);
	free(m->supported);
	free(m->signer);
	free(m->sig_key);
	free(m->sig_hashalgo);
	for (size_t i = 0; i < m->n_info; i++) {
		free(m->info[i].key);
		free(m->info[i].value);
	}
	free(m->info);
	symbols_free(m->exports, m->n_exports);
	symbols_free(m->requires, m->n_requires);
	free(m);
	return NULL;
}

ModTree *modtree_free(ModTree *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n_modules; i++)
		module_free(t->modules[i]);
	free(t->modules);
	hashmap_free(t->by_name);
	symvers_free(t->symvers);
	kmod_unref(t->ctx);
	free(t->root);
	free(t->kver);
	free(t->flavour);
	free(t->dir);
	free(t->error_path);
	free(t);
	return NULL;
}

char *kernel_flavour(const char *kver)
{
	const char *dash = strrchr(kver, '-');

	return strdup(dash && dash[1] ? dash + 1 : kver);
}

static bool is_module_file(const char *name)
{
	return endswith(name, ".ko") || endswith(name, ".ko.xz") || endswith(name, ".ko.zst") ||
	       endswith(name, ".ko.gz");
}

char *module_name_from_path(const char *path)
{
	const char *base = strrchr(path, '/');
	char *n, *dot;

	base = base ? base + 1 : path;
	n = strdup(base);
	if (!n)
		return NULL;
	dot = strstr(n, ".ko");
	if (dot)
		*dot = 0;
	for (char *c = n; *c; c++)
		if (*c == '-')
			*c = '_';
	return n;
}

static void kmod_log_to_debug(void *data, int priority, const char *file, int line,
			      const char *fn, const char *format, va_list args)
{
	_cleanup_free_ char *msg = NULL;

	if (log_get_max_level() < LOG_DEBUG)
		return;
	if (vasprintf(&msg, format, args) < 0)
		return;
	log_debug("libkmod: %s", msg);
}

int modtree_open(const char *root, const char *kver, ModTreeFlags flags, ModTree **ret,
		 char **ret_error_path)
{
	_cleanup_modtree_free_ ModTree *t = NULL;
	_cleanup_free_ char *dep = NULL;
	const char *configs[5] = {};
	_cleanup_free_ char *c0 = NULL, *c1 = NULL, *c2 = NULL, *c3 = NULL;
	struct stat st;

	t = calloc(1, sizeof(ModTree));
	if (!t)
		return -ENOMEM;
	t->root = strdup(root);
	t->kver = strdup(kver);
	t->flavour = kernel_flavour(kver);
	t->dir = path_join(root, "lib/modules", kver);
	t->by_name = hashmap_new(NULL, NULL);
	if (!t->root || !t->kver || !t->flavour || !t->dir || !t->by_name)
		return -ENOMEM;

	if (stat(t->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		int r = stat(t->dir, &st) < 0 ? negative_errno() : -ENOTDIR;
		if (ret_error_path)
			*ret_error_path = TAKE_PTR(t->dir);
		return r;
	}

	if (flags & MODTREE_REQUIRE_INDEX) {
		dep = path_join(t->dir, "modules.dep");
		if (!dep)
			return -ENOMEM;
		if (access(dep, R_OK) < 0) {
			int r = negative_errno();
			if (ret_error_path)
				*ret_error_path = TAKE_PTR(dep);
			return r;
		}
	}

	/* modprobe.d of the root, not of the host */
	c0 = path_join(root, "etc/modprobe.d");
	c1 = path_join(root, "run/modprobe.d");
	c2 = path_join(root, "usr/lib/modprobe.d");
	c3 = path_join(root, "lib/modprobe.d");
	if (!c0 || !c1 || !c2 || !c3)
		return -ENOMEM;
	configs[0] = c0;
	configs[1] = c1;
	configs[2] = c2;
	configs[3] = c3;

	t->ctx = kmod_new(t->dir, configs);
	if (!t->ctx)
		return -ENOMEM;
	kmod_set_log_fn(t->ctx, kmod_log_to_debug, NULL);
	kmod_set_log_priority(t->ctx, LOG_DEBUG);

	*ret = TAKE_PTR(t);
	return 0;
}

static int strv_push_dup(char ***l, const char *v)
{
	return strv_extend(l, v);
}

static int set_once(char **field, const char *v)
{
	if (*field)
		return 0;
	*field = strdup(v);
	return *field ? 0 : -ENOMEM;
}

static int compare_symbol(const void *a, const void *b)
{
	return strcmp(((const SymbolCrc *)a)->symbol, ((const SymbolCrc *)b)->symbol);
}

static int check_elf_magic(const char *path)
{
	_cleanup_close_ int fd = -EBADF;
	unsigned char magic[4];
	ssize_t k;

	if (!endswith(path, ".ko"))
		return 0; /* compressed: libkmod decides */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	k = read(fd, magic, sizeof(magic));
	if (k < 0)
		return negative_errno();
	if (k != sizeof(magic) || memcmp(magic, "\177ELF", 4) != 0)
		return -ENOEXEC;
	return 0;
}

static int read_module(struct kmod_ctx *ctx, const char *dir, const char *relpath,
		       Module **ret)
{
	_cleanup_(kmod_module_unrefp) struct kmod_module *km = NULL;
	_cleanup_(kmod_module_info_free_listp) struct kmod_list *info = NULL;
	_cleanup_(kmod_module_symbols_free_listp) struct kmod_list *syms = NULL;
	_cleanup_(kmod_module_versions_free_listp) struct kmod_list *vers = NULL;
	_cleanup_module_free_ Module *m = NULL;
	_cleanup_free_ char *full = NULL;
	struct kmod_list *i;
	size_t allocated = 0;
	int r;

	full = relpath[0] == '/' ? strdup(relpath) : path_join(dir, relpath);
	if (!full)
		return -ENOMEM;

	r = check_elf_magic(full);
	if (r < 0)
		return r;

	m = calloc(1, sizeof(Module));
	if (!m)
		return -ENOMEM;
	if (relpath[0] == '/') {
		const char *rel = startswith(relpath, dir);
		m->path = strdup(rel && rel[0] == '/' ? rel + 1 : relpath);
	} else
		m->path = strdup(relpath);
	m->name = module_name_from_path(relpath);
	if (!m->path || !m->name)
		return -ENOMEM;

	r = kmod_module_new_from_path(ctx, full, &km);
	if (r < 0)
		return r;

	r = kmod_module_get_info(km, &info);
	if (r < 0)
		return r == -EINVAL || r == -ENODATA ? -ENOEXEC : r;

	kmod_list_foreach(i, info) {
		const char *k = kmod_module_info_get_key(i);
		const char *v = kmod_module_info_get_value(i) ?: "";

		if (!GREEDY_REALLOC(m->info, allocated, m->n_info + 1))
			return -ENOMEM;
		m->info[m->n_info].key = strdup(k);
		m->info[m->n_info].value = strdup(v);
		if (!m->info[m->n_info].key || !m->info[m->n_info].value) {
			free(m->info[m->n_info].key);
			free(m->info[m->n_info].value);
			return -ENOMEM;
		}
		m->n_info++;

		if (streq(k, "alias"))
			r = strv_push_dup(&m->aliases, v);
		else if (streq(k, "depends")) {
			_cleanup_strv_free_ char **d = NULL;
			r = strv_split(v, ",", &d);
			if (r >= 0) {
				strv_free(m->depends);
				m->depends = TAKE_PTR(d);
			}
		} else if (streq(k, "softdep"))
			r = strv_push_dup(&m->softdeps, v);
		else if (streq(k, "firmware"))
			r = strv_push_dup(&m->firmware, v);
		else if (streq(k, "vermagic"))
			r = set_once(&m->vermagic, v);
		else if (streq(k, "license"))
			r = set_once(&m->license, v);
		else if (streq(k, "description"))
			r = set_once(&m->description, v);
		else if (streq(k, "supported"))
			r = set_once(&m->supported, v);
		else if (streq(k, "signer"))
			r = set_once(&m->signer, v);
		else if (streq(k, "sig_key"))
			r = set_once(&m->sig_key, v);
		else if (streq(k, "sig_hashalgo"))
			r = set_once(&m->sig_hashalgo, v);
		else if (streq(k, "intree"))
			m->intree = streq(v, "Y");
		if (r < 0)
			return r;
	}

	/* A module without .modinfo or without a name is not one the kernel would load. */
	if (m->n_info == 0)
		return -ENOEXEC;

	r = kmod_module_get_symbols(km, &syms);
	if (r < 0 && r != -ENOENT && r != -ENODATA)
		return r == -EINVAL ? -ENOEXEC : r;
	if (r > 0) {
		m->exports = calloc((size_t)r, sizeof(SymbolCrc));
		if (!m->exports)
			return -ENOMEM;
		kmod_list_foreach(i, syms) {
			SymbolCrc *s = &m->exports[m->n_exports];
			s->symbol = strdup(kmod_module_symbol_get_symbol(i));
			if (!s->symbol)
				return -ENOMEM;
			s->crc = kmod_module_symbol_get_crc(i);
			m->n_exports++;
		}
		qsort(m->exports, m->n_exports, sizeof(SymbolCrc), compare_symbol);
	}

	r = kmod_module_get_versions(km, &vers);
	if (r < 0 && r != -ENOENT && r != -ENODATA)
		return r == -EINVAL ? -ENOEXEC : r;
	if (r > 0) {
		m->requires = calloc((size_t)r, sizeof(SymbolCrc));
		if (!m->requires)
			return -ENOMEM;
		kmod_list_foreach(i, vers) {
			SymbolCrc *s = &m->requires[m->n_requires];
			s->symbol = strdup(kmod_module_version_get_symbol(i));
			if (!s->symbol)
				return -ENOMEM;
			s->crc = kmod_module_version_get_crc(i);
			m->n_requires++;
		}
	}

	/* empty vectors rather than NULL: "none" is an answer */
	if (!m->depends && !(m->depends = calloc(1, sizeof(char *))))
		return -ENOMEM;

	*ret = TAKE_PTR(m);
	return 0;
}

int modtree_read_module(ModTree *t, const char *path, Module **ret)
{
	int r = read_module(t->ctx, t->dir, path, ret);

	if (r < 0) {
		free(t->error_path);
		t->error_path = path[0] == '/' ? strdup(path) : path_join(t->dir, path);
	}
	return r;
}

typedef struct Walk {
	char **paths;
	size_t n, allocated;
} Walk;

static int walk(int dirfd, const char *rel, Walk *w)
{
	_cleanup_close_ int fd = -EBADF;
	DIR *d;
	struct dirent *de;
	int r = 0;

	fd = openat(dirfd, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	d = fdopendir(fd);
	if (!d)
		return negative_errno();
	TAKE_FD(fd);

	while ((de = readdir(d))) {
		_cleanup_free_ char *sub = NULL;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		/* build/ and source/ point at kernel headers, never modules */
		if (!rel[0] && (streq(de->d_name, "build") || streq(de->d_name, "source")))
			continue;
		sub = rel[0] ? path_join(rel, de->d_name) : strdup(de->d_name);
		if (!sub) {
			r = -ENOMEM;
			break;
		}
		if (de->d_type == DT_DIR) {
			r = walk(dirfd, sub, w);
			if (r < 0)
				break;
			continue;
		}
		if (!is_module_file(de->d_name))
			continue;
		if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
			/* weak-updates/ holds symlinks to modules; follow them, skip dangling ones */
			if (fstatat(dirfd, sub, &st, 0) < 0)
				continue;
			if (S_ISDIR(st.st_mode)) {
				if (de->d_type == DT_UNKNOWN) {
					r = walk(dirfd, sub, w);
					if (r < 0)
						break;
				}
				continue;
			}
			if (!S_ISREG(st.st_mode))
				continue;
		} else if (de->d_type != DT_REG)
			continue;
		if (!GREEDY_REALLOC(w->paths, w->allocated, w->n + 1)) {
			r = -ENOMEM;
			break;
		}
		w->paths[w->n++] = TAKE_PTR(sub);
	}
	closedir(d);
	return r;
}

static int compare_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int modtree_load_modules(ModTree *t)
{
	_cleanup_close_ int dfd = -EBADF;
	Walk w = {};
	int r;

	dfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		free(t->error_path);
		t->error_path = strdup(t->dir);
		return negative_errno();
	}
	r = walk(dfd, "", &w);
	if (r < 0) {
		free(t->error_path);
		t->error_path = strdup(t->dir);
		goto finish;
	}
	qsort(w.paths, w.n, sizeof(char *), compare_str);

	t->modules = calloc(w.n ?: 1, sizeof(Module *));
	if (!t->modules) {
		r = -ENOMEM;
		goto finish;
	}
	for (size_t i = 0; i < w.n; i++) {
		Module *m;

		r = modtree_read_module(t, w.paths[i], &m);
		if (r < 0)
			goto finish;
		t->modules[t->n_modules++] = m;
		r = hashmap_put(t->by_name, m->name, m);
		if (r < 0 && r != -EEXIST)
			goto finish;
	}
	r = 0;
finish:
	for (size_t i = 0; i < w.n; i++)
		free(w.paths[i]);
	free(w.paths);
	return r;
}

int modtree_load_symvers(ModTree *t, const char *path, unsigned *ret_bad_line)
{
	_cleanup_free_ char *found = NULL;
	int r;

	if (!path) {
		r = symvers_find(t->root, t->kver, &found);
		if (r == -ENOENT)
			return 0;
		if (r < 0)
			return r;
		path = found;
	}
	r = symvers_load(path, &t->symvers, ret_bad_line);
	if (r < 0) {
		free(t->error_path);
		t->error_path = strdup(path);
	}
	return r;
}

int modtree_find_path(ModTree *t, const char *name, char **ret_relpath)
{
	_cleanup_(kmod_module_unref_listp) struct kmod_list *l = NULL;
	_cleanup_free_ char *n = NULL;
	struct kmod_list *i;
	int r;

	n = module_name_from_path(name);
	if (!n)
		return -ENOMEM;
	r = kmod_module_new_from_lookup(t->ctx, n, &l);
	if (r < 0)
		return r;
	kmod_list_foreach(i, l) {
		struct kmod_module *km = kmod_module_get_module(i);
		const char *p = kmod_module_get_path(km);
		const char *rel;

		if (!streq(kmod_module_get_name(km), n) || !p) {
			kmod_module_unref(km);
			continue;
		}
		rel = startswith(p, t->dir);
		*ret_relpath = strdup(rel && rel[0] == '/' ? rel + 1 : p);
		kmod_module_unref(km);
		return *ret_relpath ? 0 : -ENOMEM;
	}
	return -ENOENT;
}

const Module *modtree_get(const ModTree *t, const char *name)
{
	return hashmap_get(t->by_name, name);
}

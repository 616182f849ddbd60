/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>

#include <libkmod.h>

#include "fileio.h"
#include "kmodd-cleanup.h"
#include "modelf.h"
#include "tests.h"

static const char *fixture_tree(const char *which, const char *kver)
{
	static char buf[4096];
	const char *base = getenv("KMODD_FIXTURES");
	const char *home = getenv("HOME");
	struct stat st;

	if (base)
		snprintf(buf, sizeof(buf), "%s/%s/lib/modules/%s", base, which, kver);
	else
		snprintf(buf, sizeof(buf), "%s/.cache/kmodd/fixtures/%s/lib/modules/%s",
			 home ?: "/root", which, kver);
	if (stat(buf, &st) < 0)
		SKIP("fixture %s not unpacked (scripts/fixtures.sh)", buf);
	return buf;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What modelf reported, one list per walk. */
typedef struct Item {
	char *a;
	char *b;
	uint64_t crc;
	char bind;
} Item;

typedef struct Items {
	Item *v;
	size_t n, allocated;
} Items;

static void items_done(Items *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].a);
		free(l->v[i].b);
	}
	free(l->v);
	*l = (Items){};
}

static int items_add(Items *l, const char *a, size_t a_len, const char *b, uint64_t crc,
		     char bind)
{
	Item *it;

	if (!GREEDY_REALLOC(l->v, l->allocated, l->n + 1))
		return -ENOMEM;
	it = &l->v[l->n];
	*it = (Item){ .a = strndup(a, a_len), .b = b ? strdup(b) : NULL, .crc = crc,
		      .bind = bind };
	if (!it->a || (b && !it->b)) {
		free(it->a);
		free(it->b);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

static int add_info(const char *key, size_t key_len, const char *value, void *u)
{
	return items_add(u, key, key_len, value, 0, 0);
}

static int add_export(const char *name, void *u)
{
	return items_add(u, name, strlen(name), NULL, 0, 0);
}

static int add_need(const char *name, uint64_t crc, char bind, void *u)
{
	return items_add(u, name, strlen(name), NULL, crc, bind);
}

typedef struct Result {
	Items info, exports, needs;
	int r_info, r_exports, r_needs;
} Result;

static void result_done(Result *r)
{
	items_done(&r->info);
	items_done(&r->exports);
	items_done(&r->needs);
}

static int modelf_result(const char *path, Result *ret)
{
	_cleanup_modelf_close_ ModElf *e = NULL;
	int r;

	r = modelf_open(AT_FDCWD, path, &e);
	if (r < 0)
		return r;
	ret->r_info = modelf_modinfo(e, add_info, &ret->info);
	ret->r_exports = modelf_exports(e, add_export, &ret->exports);
	ret->r_needs = modelf_needs(e, add_need, &ret->needs);
	return 0;
}

static const char *const sig_keys[] = { "sig_id", "signer", "sig_key", "sig_hashalgo",
					"signature" };

/* Compares modelf's lists for path with libkmod's; the first difference goes to why. */
static int compare_module(struct kmod_ctx *ctx, const char *path, double *t_modelf,
			  double *t_kmod, char *why, size_t why_size)
{
	_cleanup_(result_done) Result m = {};
	_cleanup_(kmod_module_unrefp) struct kmod_module *mod = NULL;
	_cleanup_(kmod_module_info_free_listp) struct kmod_list *info = NULL;
	_cleanup_(kmod_module_symbols_free_listp) struct kmod_list *syms = NULL;
	_cleanup_(kmod_module_dependency_symbols_free_listp) struct kmod_list *deps = NULL;
	struct kmod_list *l;
	int r, r_info, r_syms, r_deps;
	double t;
	size_t i;

#define DIFF(...)                                                           \
	do {                                                                \
		snprintf(why, why_size, __VA_ARGS__);                       \
		return -1;                                                  \
	} while (0)

	t = now();
	r = modelf_result(path, &m);
	*t_modelf += now() - t;
	if (r < 0)
		DIFF("%s: modelf_open: %s", path, errno_name_full(-r));

	t = now();
	r = kmod_module_new_from_path(ctx, path, &mod);
	if (r < 0)
		DIFF("%s: kmod_module_new_from_path: %s", path, errno_name_full(-r));
	r_info = kmod_module_get_info(mod, &info);
	r_syms = kmod_module_get_symbols(mod, &syms);
	r_deps = kmod_module_get_dependency_symbols(mod, &deps);
	*t_kmod += now() - t;

	/* info: modelf's entries, then libkmod's signature entries, if any */
	if (r_info < 0 || m.r_info < 0) {
		if (r_info != m.r_info)
			DIFF("%s: info returned %d, libkmod %d", path, m.r_info, r_info);
	} else {
		if ((size_t)m.r_info != m.info.n)
			DIFF("%s: modelf_modinfo returned %d for %zu items", path, m.r_info,
			     m.info.n);
		i = 0;
		kmod_list_foreach(l, info) {
			const char *k = kmod_module_info_get_key(l);
			const char *v = kmod_module_info_get_value(l);

			if (i < m.info.n) {
				if (!streq(k, m.info.v[i].a) || !streq(v, m.info.v[i].b))
					DIFF("%s: info #%zu is %s=%s, libkmod %s=%s", path, i,
					     m.info.v[i].a, m.info.v[i].b, k, v);
			} else if (i - m.info.n >= ELEMENTSOF(sig_keys) ||
				   !streq(k, sig_keys[i - m.info.n]))
				DIFF("%s: info #%zu missing: libkmod %s=%s", path, i, k, v);
			i++;
		}
		if (i < m.info.n)
			DIFF("%s: info #%zu %s extra", path, i, m.info.v[i].a);
	}

	if (r_syms < 0 || m.r_exports < 0) {
		if (r_syms != m.r_exports)
			DIFF("%s: exports returned %d, libkmod %d", path, m.r_exports, r_syms);
	} else {
		if ((size_t)m.r_exports != m.exports.n)
			DIFF("%s: modelf_exports returned %d for %zu items", path, m.r_exports,
			     m.exports.n);
		i = 0;
		kmod_list_foreach(l, syms) {
			const char *s = kmod_module_symbol_get_symbol(l);

			if (i >= m.exports.n)
				DIFF("%s: export #%zu missing: libkmod %s", path, i, s);
			if (!streq(s, m.exports.v[i].a))
				DIFF("%s: export #%zu is %s, libkmod %s", path, i,
				     m.exports.v[i].a, s);
			i++;
		}
		if (i < m.exports.n)
			DIFF("%s: export #%zu %s extra", path, i, m.exports.v[i].a);
	}

	if (r_deps < 0 || m.r_needs < 0) {
		if (r_deps != m.r_needs)
			DIFF("%s: needs returned %d, libkmod %d", path, m.r_needs, r_deps);
	} else {
		if ((size_t)m.r_needs != m.needs.n)
			DIFF("%s: modelf_needs returned %d for %zu items", path, m.r_needs,
			     m.needs.n);
		i = 0;
		kmod_list_foreach(l, deps) {
			const char *s = kmod_module_dependency_symbol_get_symbol(l);
			uint64_t crc = kmod_module_dependency_symbol_get_crc(l);
			int bind = kmod_module_dependency_symbol_get_bind(l);
			const Item *it;

			if (i >= m.needs.n)
				DIFF("%s: need #%zu missing: libkmod %s", path, i, s);
			it = &m.needs.v[i];
			if (!streq(s, it->a) || crc != it->crc || bind != it->bind)
				DIFF("%s: need #%zu is %s 0x%" PRIx64 " %c, libkmod %s 0x%" PRIx64
				     " %c",
				     path, i, it->a, it->crc, it->bind, s, crc, bind);
			i++;
		}
		if (i < m.needs.n)
			DIFF("%s: need #%zu %s extra", path, i, m.needs.v[i].a);
	}
#undef DIFF
	return 0;
}

static char **found;
static size_t n_found, found_allocated;

static int collect_ko(const char *path, const struct stat *st _unused_, int type,
		      struct FTW *ftw _unused_)
{
	if (type != FTW_F || !endswith(path, ".ko"))
		return 0;
	if (!GREEDY_REALLOC(found, found_allocated, n_found + 1))
		return -1;
	found[n_found] = strdup(path);
	if (!found[n_found])
		return -1;
	n_found++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void found_clear(void)
{
	for (size_t i = 0; i < n_found; i++)
		free(found[i]);
	free(found);
	found = NULL;
	n_found = found_allocated = 0;
}

static void compare_tree(const char *which, const char *kver)
{
	const char *dir = fixture_tree(which, kver);
	const char *no_config = NULL;
	_cleanup_(kmod_unrefp) struct kmod_ctx *ctx = kmod_new(dir, &no_config);
	double t_modelf = 0, t_kmod = 0;
	char why[1024];

	ASSERT_TRUE(ctx);
	found_clear();
	ASSERT_TRUE(nftw(dir, collect_ko, 32, FTW_PHYS) == 0);
	ASSERT_TRUE(n_found > 100);
	qsort(found, n_found, sizeof(char *), cmp_str);

	for (size_t i = 0; i < n_found; i++)
		if (compare_module(ctx, found[i], &t_modelf, &t_kmod, why, sizeof(why)) < 0) {
			found_clear();
			TEST_FAIL("%s", why);
		}

	printf("# %s: %zu modules, info+exports+needs: modelf %.3f s, libkmod %.3f s\n",
	       which, n_found, t_modelf, t_kmod);
	found_clear();
}

TEST(same_as_libkmod_54)
{
	compare_tree("full-54", "6.1.0-54-amd64");
}

TEST(same_as_libkmod_53)
{
	compare_tree("full-53", "6.1.0-53-amd64");
}

static int count_info(const char *k _unused_, size_t kl _unused_, const char *v _unused_,
		      void *u _unused_)
{
	return 0;
}

static int count_export(const char *n _unused_, void *u _unused_)
{
	return 0;
}

static int count_need(const char *n _unused_, uint64_t c _unused_, char b _unused_,
		      void *u _unused_)
{
	return 0;
}

/* Opens path and walks all three lists; the open result. */
static int exercise(int dfd, const char *path)
{
	_cleanup_modelf_close_ ModElf *e = NULL;
	int r;

	r = modelf_open(dfd, path, &e);
	if (r < 0)
		return r;
	(void)modelf_modinfo(e, count_info, NULL);
	(void)modelf_exports(e, count_export, NULL);
	(void)modelf_needs(e, count_need, NULL);
	return 0;
}

static int stop_at_second(const char *k _unused_, size_t kl _unused_, const char *v _unused_,
			  void *u)
{
	return ++*(int *)u == 2 ? -ECANCELED : 0;
}

/* A scratch directory, removed with its files at the end of the test. */
static char tmpdir[64];

static void tmpdir_remove(int *fd)
{
	DIR *d;
	struct dirent *de;

	if (*fd < 0)
		return;
	d = fdopendir(*fd);
	if (d) {
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	} else
		close(*fd);
	rmdir(tmpdir);
}

static int tmpdir_open(void)
{
	int fd;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-modelf-XXXXXX");
	if (!mkdtemp(tmpdir))
		return negative_errno();
	fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? negative_errno() : fd;
}

static int put(int dfd, const char *name, const void *data, size_t size)
{
	_cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
					0644);

	if (fd < 0)
		return negative_errno();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		return -EIO;
	return 0;
}

static uint64_t le(const char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = n; i > 0; i--)
		v = (v << 8) | (uint8_t)p[i - 1];
	return v;
}

static void set_le(char *p, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++, v >>= 8)
		p[i] = v & 0xff;
}

/* The offset of the section header called name in an x86-64 module. */
static size_t find_shdr(const char *m, size_t size, const char *name)
{
	uint64_t shoff = le(m + 40, 8), shnum = le(m + 60, 2), shstrndx = le(m + 62, 2);
	uint64_t names;

	ASSERT_TRUE(shoff + shnum * 64 <= size && shstrndx < shnum);
	names = le(m + shoff + shstrndx * 64 + 24, 8);
	for (uint64_t i = 1; i < shnum; i++)
		if (streq(m + names + le(m + shoff + i * 64, 4), name))
			return shoff + i * 64;
	TEST_FAIL("no section %s", name);
}

static const char *sample(size_t *ret_size, char **ret)
{
	static char path[4200];
	const char *dir = fixture_tree("full-54", "6.1.0-54-amd64");

	snprintf(path, sizeof(path), "%s/kernel/drivers/net/dummy.ko", dir);
	ASSERT_OK(read_full_file(path, 0, ret, ret_size));
	return path;
}

TEST(errors)
{
	_cleanup_(tmpdir_remove) int dfd = -EBADF;
	_cleanup_free_ char *m = NULL, *copy = NULL;
	size_t size, o;
	char cmd[512];
	int n = 0;

	(void)sample(&size, &m);
	dfd = tmpdir_open();
	ASSERT_OK(dfd);
	copy = malloc(size);
	ASSERT_TRUE(copy);

	ASSERT_ERROR(exercise(dfd, "missing.ko"), ENOENT);
	ASSERT_ERROR(exercise(AT_FDCWD, "/"), EISDIR);

	ASSERT_OK(put(dfd, "empty.ko", "", 0));
	ASSERT_ERROR(exercise(dfd, "empty.ko"), ENOEXEC);

	for (size_t i = 0; i < 65536; i++)
		copy[i % size] = random();
	ASSERT_OK(put(dfd, "random.ko", copy, size));
	ASSERT_ERROR(exercise(dfd, "random.ko"), ENOEXEC);

	/* the whole file but not its section table */
	for (size_t len = 0; len < size; len += len < 256 ? 1 : 37) {
		ASSERT_OK(put(dfd, "cut.ko", m, len));
		ASSERT_ERROR(exercise(dfd, "cut.ko"), ENOEXEC);
		if (len + 37 >= le(m + 40, 8) + le(m + 60, 2) * 64)
			break;
	}
	/* past it: the signature cut short is not ELF's business */
	for (size_t len = le(m + 40, 8) + le(m + 60, 2) * 64; len <= size; len++) {
		ASSERT_OK(put(dfd, "cut.ko", m, len));
		ASSERT_OK(exercise(dfd, "cut.ko"));
	}

	memcpy(copy, m, size);
	set_le(copy + 40, 8, size);
	ASSERT_OK(put(dfd, "shoff.ko", copy, size));
	ASSERT_ERROR(exercise(dfd, "shoff.ko"), ENOEXEC);
	set_le(copy + 40, 8, UINT64_MAX - 8);
	ASSERT_OK(put(dfd, "shoff.ko", copy, size));
	ASSERT_ERROR(exercise(dfd, "shoff.ko"), ENOEXEC);
	memcpy(copy, m, size);
	set_le(copy + 60, 2, 0xffff);
	ASSERT_OK(put(dfd, "shnum.ko", copy, size));
	ASSERT_ERROR(exercise(dfd, "shnum.ko"), ENOEXEC);
	memcpy(copy, m, size);
	set_le(copy + 58, 2, 40);
	ASSERT_OK(put(dfd, "shentsize.ko", copy, size));
	ASSERT_ERROR(exercise(dfd, "shentsize.ko"), ENOEXEC);

	/* sh_offset + sh_size wraps: the section does not exist */
	memcpy(copy, m, size);
	o = find_shdr(copy, size, ".modinfo");
	set_le(copy + o + 24, 8, UINT64_MAX - 16);
	set_le(copy + o + 32, 8, 64);
	ASSERT_OK(put(dfd, "modinfo.ko", copy, size));
	ASSERT_ERROR(exercise(dfd, "modinfo.ko"), ENOEXEC);

	memcpy(copy, m, size);
	o = find_shdr(copy, size, ".symtab");
	set_le(copy + o + 32, 8, UINT64_MAX - le(copy + o + 24, 8) + 1);
	ASSERT_OK(put(dfd, "symtab.ko", copy, size));
	{
		_cleanup_modelf_close_ ModElf *e = NULL;

		ASSERT_OK(modelf_open(dfd, "symtab.ko", &e));
		ASSERT_ERROR(modelf_needs(e, count_need, NULL), EINVAL);
		ASSERT_OK(modelf_modinfo(e, count_info, NULL));
		/* no .symtab: __ksymtab_strings, which dummy.ko has not */
		ASSERT_ERROR(modelf_exports(e, count_export, NULL), ENOENT);
	}
	{
		const char *no_config = NULL;
		_cleanup_(kmod_unrefp) struct kmod_ctx *ctx = kmod_new(tmpdir, &no_config);
		_cleanup_free_ char *p = path_join(tmpdir, "symtab.ko");
		double t1 = 0, t2 = 0;
		char why[1024];

		ASSERT_TRUE(ctx && p);
		if (compare_module(ctx, p, &t1, &t2, why, sizeof(why)) < 0)
			TEST_FAIL("%s", why);
	}

	/* the callback's error stops the walk */
	ASSERT_OK(put(dfd, "dummy.ko", m, size));
	{
		_cleanup_modelf_close_ ModElf *e = NULL;
		int calls = 0;

		ASSERT_OK(modelf_open(dfd, "dummy.ko", &e));
		ASSERT_ERROR(modelf_modinfo(e, stop_at_second, &calls), ECANCELED);
		ASSERT_EQ(calls, 2);
	}

	/* compressed */
	snprintf(cmd, sizeof(cmd), "cd %s && xz -k dummy.ko && zstd -q dummy.ko && gzip -k dummy.ko",
		 tmpdir);
	if (system(cmd) == 0) {
		ASSERT_ERROR(exercise(dfd, "dummy.ko.xz"), EMEDIUMTYPE);
		ASSERT_ERROR(exercise(dfd, "dummy.ko.zst"), EMEDIUMTYPE);
		ASSERT_ERROR(exercise(dfd, "dummy.ko.gz"), EMEDIUMTYPE);
		n++;
	}
	ASSERT_OK(put(dfd, "magic.ko", "\x28\xb5\x2f\xfd", 4));
	ASSERT_ERROR(exercise(dfd, "magic.ko"), EMEDIUMTYPE);
	ASSERT_OK(put(dfd, "magic.ko", "\xfd" "7zXZ", 6));
	ASSERT_ERROR(exercise(dfd, "magic.ko"), EMEDIUMTYPE);
	ASSERT_OK(put(dfd, "magic.ko", "\x1f\x8b", 2));
	ASSERT_ERROR(exercise(dfd, "magic.ko"), EMEDIUMTYPE);
	if (!n)
		printf("# xz/zstd/gzip not run, magic bytes only\n");
}

/* Random damage to the headers, the section table and the symbol data: any result but a
 * crash (or a sanitizer report). */
TEST(mutations)
{
	_cleanup_(tmpdir_remove) int dfd = -EBADF;
	_cleanup_free_ char *m = NULL, *copy = NULL;
	uint64_t shoff, shtab;
	size_t size, opened = 0;

	(void)sample(&size, &m);
	dfd = tmpdir_open();
	ASSERT_OK(dfd);
	copy = malloc(size);
	ASSERT_TRUE(copy);
	shoff = le(m + 40, 8);
	shtab = le(m + 60, 2) * 64;
	srandom(1);

	for (int round = 0; round < 3000; round++) {
		int flips = 1 + random() % 4;

		memcpy(copy, m, size);
		for (int f = 0; f < flips; f++) {
			size_t at;

			switch (random() % 3) {
			case 0:
				at = random() % 64;
				break;
			case 1:
				at = shoff + random() % shtab;
				break;
			default:
				at = random() % size;
				break;
			}
			copy[at] = random() % 4 == 0 ? 0xff : random();
		}
		ASSERT_OK(put(dfd, "m.ko", copy, size));
		if (exercise(dfd, "m.ko") >= 0)
			opened++;
	}
	printf("# mutations: %zu of 3000 opened\n", opened);
}

/* Wall time of each reader alone over a warm tree, for the log. */
TEST(timing_54)
{
	const char *dir = fixture_tree("full-54", "6.1.0-54-amd64");
	const char *no_config = NULL;
	_cleanup_(kmod_unrefp) struct kmod_ctx *ctx = kmod_new(dir, &no_config);
	double t, t_modelf, t_kmod;

	ASSERT_TRUE(ctx);
	found_clear();
	ASSERT_TRUE(nftw(dir, collect_ko, 32, FTW_PHYS) == 0);
	for (size_t i = 0; i < n_found; i++)
		(void)exercise(AT_FDCWD, found[i]);

	t = now();
	for (size_t i = 0; i < n_found; i++)
		ASSERT_OK(exercise(AT_FDCWD, found[i]));
	t_modelf = now() - t;

	t = now();
	for (size_t i = 0; i < n_found; i++) {
		_cleanup_(kmod_module_unrefp) struct kmod_module *mod = NULL;
		_cleanup_(kmod_module_info_free_listp) struct kmod_list *info = NULL;
		_cleanup_(kmod_module_symbols_free_listp) struct kmod_list *syms = NULL;
		_cleanup_(kmod_module_dependency_symbols_free_listp) struct kmod_list *deps = NULL;

		ASSERT_OK(kmod_module_new_from_path(ctx, found[i], &mod));
		(void)kmod_module_get_info(mod, &info);
		(void)kmod_module_get_symbols(mod, &syms);
		(void)kmod_module_get_dependency_symbols(mod, &deps);
	}
	t_kmod = now() - t;

	printf("# timing full-54, %zu modules, open+info+exports+needs+close: modelf %.1f ms, "
	       "libkmod %.1f ms (%.1fx)\n",
	       n_found, t_modelf * 1e3, t_kmod * 1e3, t_kmod / t_modelf);
	found_clear();
}

/* Rewrites an x86-64 module as ELF32 and/or big-endian: the header, section table, .symtab
 * and __versions fields libkmod and modelf read, in place (the 32-bit tables are smaller). */
static void put_uint(char *p, size_t n, uint64_t v, bool msb)
{
	for (size_t i = 0; i < n; i++, v >>= 8)
		p[msb ? n - 1 - i : i] = v & 0xff;
}

static void convert(const char *m, size_t size, char *out, bool is64, bool msb)
{
	uint64_t shoff = le(m + 40, 8), shnum = le(m + 60, 2), shstrndx = le(m + 62, 2);
	size_t shsz = is64 ? 64 : 40;
	size_t symtab = find_shdr(m, size, ".symtab"), versions = find_shdr(m, size, "__versions");

	memcpy(out, m, size);
	memset(out + 16, 0, 48);
	out[EI_CLASS] = is64 ? ELFCLASS64 : ELFCLASS32;
	out[EI_DATA] = msb ? ELFDATA2MSB : ELFDATA2LSB;
	put_uint(out + 18, 2, le(m + 18, 2), msb);
	put_uint(out + (is64 ? 40 : 32), is64 ? 8 : 4, shoff, msb);
	put_uint(out + (is64 ? 58 : 46), 2, shsz, msb);
	put_uint(out + (is64 ? 60 : 48), 2, shnum, msb);
	put_uint(out + (is64 ? 62 : 50), 2, shstrndx, msb);

	memset(out + shoff, 0, shnum * 64);
	for (uint64_t i = 0; i < shnum; i++) {
		const char *s = m + shoff + i * 64;
		char *d = out + shoff + i * shsz;
		uint64_t sh_size = le(s + 32, 8);

		if (shoff + i * 64 == symtab)
			sh_size = sh_size / 24 * (is64 ? 24 : 16);
		put_uint(d, 4, le(s, 4), msb);
		put_uint(d + 4, 4, le(s + 4, 4), msb);
		if (is64) {
			put_uint(d + 24, 8, le(s + 24, 8), msb);
			put_uint(d + 32, 8, sh_size, msb);
		} else {
			put_uint(d + 16, 4, le(s + 24, 8), msb);
			put_uint(d + 20, 4, sh_size, msb);
		}
	}

	for (uint64_t o = le(m + symtab + 24, 8), k = 0; k < le(m + symtab + 32, 8) / 24; k++) {
		const char *s = m + o + k * 24;
		char *d = out + o + k * (is64 ? 24 : 16);

		memset(d, 0, is64 ? 24 : 16);
		put_uint(d, 4, le(s, 4), msb);
		d[is64 ? 4 : 12] = s[4];
		put_uint(d + (is64 ? 6 : 14), 2, le(s + 6, 2), msb);
		put_uint(d + (is64 ? 8 : 4), is64 ? 8 : 4, le(s + 8, 8), msb);
	}

	for (uint64_t o = le(m + versions + 24, 8), k = 0; k < le(m + versions + 32, 8) / 64; k++) {
		const char *s = m + o + k * 64;
		char *d = out + o + k * 64;

		memset(d, 0, 64);
		put_uint(d, is64 ? 8 : 4, le(s, 8), msb);
		memcpy(d + (is64 ? 8 : 4), s + 8, 56);
	}
}

TEST(elf32_and_big_endian)
{
	static const char *const samples[] = { "kernel/drivers/net/dummy.ko", "kernel/lib/crc8.ko",
					       "kernel/drivers/net/mii.ko" };
	const char *dir = fixture_tree("full-54", "6.1.0-54-amd64");
	_cleanup_(tmpdir_remove) int dfd = -EBADF;
	const char *no_config = NULL;
	_cleanup_(kmod_unrefp) struct kmod_ctx *ctx = NULL;
	char why[1024];

	dfd = tmpdir_open();
	ASSERT_OK(dfd);
	ctx = kmod_new(tmpdir, &no_config);
	ASSERT_TRUE(ctx);

	for (size_t i = 0; i < ELEMENTSOF(samples); i++)
		for (int variant = 0; variant < 4; variant++) {
			_cleanup_free_ char *src = path_join(dir, samples[i]), *m = NULL, *out = NULL;
			_cleanup_free_ char *p = NULL;
			_cleanup_(result_done) Result a = {}, b = {};
			double t1 = 0, t2 = 0;
			size_t size;

			ASSERT_TRUE(src);
			ASSERT_OK(read_full_file(src, 0, &m, &size));
			out = malloc(size);
			ASSERT_TRUE(out);
			convert(m, size, out, variant & 1, variant & 2);
			ASSERT_OK(put(dfd, "v.ko", out, size));
			p = path_join(tmpdir, "v.ko");
			ASSERT_TRUE(p);
			if (compare_module(ctx, p, &t1, &t2, why, sizeof(why)) < 0)
				TEST_FAIL("%s variant %d: %s", samples[i], variant, why);

			/* and the same lists as the original */
			ASSERT_OK(modelf_result(src, &a));
			ASSERT_OK(modelf_result(p, &b));
			ASSERT_EQ(a.r_info, b.r_info);
			ASSERT_EQ(a.r_exports, b.r_exports);
			ASSERT_EQ(a.r_needs, b.r_needs);
			ASSERT_TRUE(a.r_exports > 0 || i == 0);
			for (size_t k = 0; k < a.needs.n; k++) {
				ASSERT_STREQ(a.needs.v[k].a, b.needs.v[k].a);
				ASSERT_EQ(a.needs.v[k].crc, b.needs.v[k].crc);
			}
		}
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/stat.h>

#include <libkmod.h>

#include "fileio.h"
#include "hashmap.h"
#include "kmodd-cleanup.h"
#include "kmodindex.h"
#include "strv.h"
#include "tests.h"

#define KVER54 "6.1.0-54-amd64"

static const char *fixture_dir(const char *which)
{
	static char buf[4096];
	const char *base = getenv("KMODD_FIXTURES");
	const char *home = getenv("HOME");
	struct stat st;

	if (base)
		snprintf(buf, sizeof(buf), "%s/%s/lib/modules/%s", base, which, KVER54);
	else
		snprintf(buf, sizeof(buf), "%s/.cache/kmodd/fixtures/%s/lib/modules/%s",
			 home ?: "/root", which, KVER54);
	if (stat(buf, &st) < 0)
		SKIP("fixture %s not unpacked (scripts/fixtures.sh)", buf);
	return buf;
}

static char *read_fixture(const char *dir, const char *name, size_t *ret_size)
{
	_cleanup_free_ char *p = path_join(dir, name);
	char *data = NULL;

	ASSERT_TRUE(p);
	ASSERT_OK(read_full_file(p, 0, &data, ret_size));
	return data;
}

typedef struct Collect {
	char buf[4096];
	unsigned n;
} Collect;

static void collect(const char *value, uint32_t priority, void *userdata)
{
	Collect *c = userdata;
	size_t l = strlen(c->buf);

	snprintf(c->buf + l, sizeof(c->buf) - l, "%s%s/%u", c->n++ ? " " : "", value,
		 priority);
}

static int write_file(const char *dir, const char *name, const KBuf *b)
{
	_cleanup_free_ char *p = path_join(dir, name);

	return p ? write_file_atomic(p, b->data, b->size, 0644) : -ENOMEM;
}

TEST(empty)
{
	_cleanup_kmod_index_free_ KmodIndex *idx = kmod_index_new();
	KBuf b = {};
	static const unsigned char expect[] = { 0xb0, 0x07, 0xf4, 0x57, 0, 2,
						0,    1,    0,	  0,	0, 12 };

	ASSERT_TRUE(idx);
	ASSERT_OK(kmod_index_write(idx, &b));
	ASSERT_EQ(b.size, 12);
	ASSERT_TRUE(memcmp(b.data, expect, 12) == 0);
	ASSERT_OK(kmod_index_check(b.data, b.size, NULL));
	kbuf_done(&b);
}

/* A hand-checked serialisation: root "" -> 'a' prefix "b" -> children 'c' (value) and
 * 'd' (prefix "e", two values ordered by priority). */
TEST(small_layout)
{
	_cleanup_kmod_index_free_ KmodIndex *idx = kmod_index_new();
	KBuf b = {};
	static const unsigned char expect[] = {
		0xb0, 0x07, 0xf4, 0x57, 0x00, 0x02, 0x00, 0x01, 0x20, 0x00, 0x00, 0x34,
		/* 12: node 'c', no prefix, one value */
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 'x', 0,
		/* 22: node 'd', prefix "e", values y/1, z/3 */
		'e', 0, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 'y', 0, 0x00,
		0x00, 0x00, 0x03, 'z', 0,
		/* 40: node 'a', prefix "b", children c..d */
		'b', 0, 'c', 'd', 0x40, 0x00, 0x00, 0x0c, 0xc0, 0x00, 0x00, 0x16,
		/* 52: root, children a..a */
		'a', 'a', 0xa0, 0x00, 0x00, 0x28,
		/* 58: end; the root is at 52 = 0x34, with CHILDS */
	};

	ASSERT_TRUE(idx);
	ASSERT_OK(kmod_index_add(idx, "abde", "z", 3));
	ASSERT_OK(kmod_index_add(idx, "abc", "x", 5));
	ASSERT_OK(kmod_index_add(idx, "abde", "y", 1));
	ASSERT_OK(kmod_index_write(idx, &b));
	ASSERT_OK(kmod_index_check(b.data, b.size, NULL));
	ASSERT_EQ(b.size, 58);
	ASSERT_TRUE(memcmp(b.data, expect, sizeof(expect)) == 0);
	kbuf_done(&b);
}

TEST(lookup_roundtrip)
{
	_cleanup_kmod_index_free_ KmodIndex *idx = kmod_index_new();
	KBuf b = {};
	Collect c = {};

	ASSERT_OK(kmod_index_add(idx, "pci:v00008086d0000100E*", "e1000", 7));
	ASSERT_OK(kmod_index_add(idx, "pci:v00008086d0000100F*", "e1000", 7));
	ASSERT_OK(kmod_index_add(idx, "pci:v00008086d*", "other", 2));
	ASSERT_OK(kmod_index_add(idx, "pci:v00008086d0000100E*", "e1000e", 3));
	ASSERT_OK(kmod_index_add(idx, "p", "short", 1));
	ASSERT_ERROR(kmod_index_add(idx, "caf\xc3\xa9", "x", 1), EINVAL);
	ASSERT_OK(kmod_index_write(idx, &b));
	ASSERT_OK(kmod_index_check(b.data, b.size, NULL));

	ASSERT_EQ(kmod_index_lookup(b.data, b.size, "pci:v00008086d0000100E*", collect,
				    &c),
		  2);
	ASSERT_STREQ(c.buf, "e1000e/3 e1000/7");
	c = (Collect){};
	ASSERT_EQ(kmod_index_lookup(b.data, b.size, "p", collect, &c), 1);
	ASSERT_STREQ(c.buf, "short/1");
	ASSERT_EQ(kmod_index_lookup(b.data, b.size, "pci:", NULL, NULL), 0);
	ASSERT_EQ(kmod_index_lookup(b.data, b.size, "nothing", NULL, NULL), 0);
	kbuf_done(&b);
}

/* libkmod itself reads what we write: modules.alias.bin (wildcard match) and
 * modules.dep.bin. */
TEST(libkmod_reads_it)
{
	_cleanup_kmod_index_free_ KmodIndex *alias = kmod_index_new(),
					    *dep = kmod_index_new();
	_cleanup_(kmod_unrefp) struct kmod_ctx *ctx = NULL;
	_cleanup_(kmod_module_unref_listp) struct kmod_list *list = NULL;
	char dir[] = "/tmp/test-kmodindex.XXXXXX";
	KBuf a = {}, d = {};
	const char *null_config = NULL;
	_cleanup_free_ char *names = NULL;
	struct kmod_list *l;

	ASSERT_TRUE(mkdtemp(dir));
	ASSERT_OK(kmod_index_add(alias, "pci:v00008086d0000100Esv*sd*bc*sc*i*", "e1000",
				 0));
	ASSERT_OK(kmod_index_add(alias, "pci:v00008086d*sv*sd*bc02sc00i*", "e1000e", 1));
	ASSERT_OK(kmod_index_add(dep, "e1000", "kernel/drivers/net/e1000.ko:", 0));
	ASSERT_OK(kmod_index_add(dep, "e1000e",
				 "kernel/drivers/net/e1000e.ko: kernel/x/ptp.ko", 1));
	ASSERT_OK(kmod_index_write(alias, &a));
	ASSERT_OK(kmod_index_write(dep, &d));
	ASSERT_OK(write_file(dir, "modules.alias.bin", &a));
	ASSERT_OK(write_file(dir, "modules.dep.bin", &d));

	ctx = kmod_new(dir, &null_config);
	ASSERT_TRUE(ctx);
	ASSERT_OK(kmod_module_new_from_lookup(
		ctx, "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", &list));
	kmod_list_foreach(l, list) {
		struct kmod_module *m = kmod_module_get_module(l);
		_cleanup_free_ char *prev = names;

		names = NULL;
		ASSERT_TRUE(asprintf(&names, "%s%s%s", prev ?: "", prev ? " " : "",
				     kmod_module_get_name(m)) >= 0);
		kmod_module_unref(m);
	}
	ASSERT_TRUE(names && strstr(names, "e1000") && strstr(names, "e1000e"));

	kbuf_done(&a);
	kbuf_done(&d);
	{
		_cleanup_free_ char *cmd = NULL;
		ASSERT_TRUE(asprintf(&cmd, "rm -rf '%s'", dir) >= 0);
		ASSERT_EQ(system(cmd), 0);
	}
}

TEST(check_rejects_corruption)
{
	_cleanup_kmod_index_free_ KmodIndex *idx = kmod_index_new();
	KBuf b = {};
	const char *why = NULL;

	ASSERT_OK(kmod_index_add(idx, "abc", "x", 1));
	ASSERT_OK(kmod_index_add(idx, "abd", "y", 2));
	ASSERT_OK(kmod_index_write(idx, &b));
	ASSERT_OK(kmod_index_check(b.data, b.size, &why));

	ASSERT_ERROR(kmod_index_check(b.data, 11, &why), EBADMSG);
	ASSERT_STREQ(why, "shorter than the header");
	b.data[0] ^= 1;
	ASSERT_ERROR(kmod_index_check(b.data, b.size, &why), EBADMSG);
	ASSERT_STREQ(why, "bad magic");
	b.data[0] ^= 1;
	ASSERT_ERROR(kmod_index_check(b.data, b.size - 3, &why), EBADMSG);
	b.data[11] = 0x7f; /* root offset beyond the end */
	ASSERT_ERROR(kmod_index_check(b.data, b.size, &why), EBADMSG);
	kbuf_done(&b);
}

TEST(normalize)
{
	char buf[64];

	ASSERT_OK(kmod_alias_normalize("usb:v-x[0-9]y-z", buf));
	ASSERT_STREQ(buf, "usb:v_x[0-9]y_z");
	ASSERT_ERROR(kmod_alias_normalize("a]b", buf), EINVAL);
	ASSERT_ERROR(kmod_alias_normalize("a[bc", buf), EINVAL);
}

/* Module order of a modules.dep: name -> line index (depmod's priority). */
static Hashmap *dep_order(char *dep)
{
	Hashmap *h = hashmap_new(free, NULL);
	uintptr_t i = 0;

	ASSERT_TRUE(h);
	for (char *line = dep, *next; line && *line; line = next, i++) {
		char *colon = strchr(line, ':'), *slash, *dot;
		_cleanup_free_ char *name = NULL;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		ASSERT_TRUE(colon);
		*colon = 0;
		slash = strrchr(line, '/');
		name = strdup(slash ? slash + 1 : line);
		ASSERT_TRUE(name);
		dot = strchr(name, '.');
		if (dot)
			*dot = 0;
		for (char *p = name; *p; p++)
			if (*p == '-')
				*p = '_';
		*colon = ':';
		ASSERT_OK(hashmap_put(h, name, (void *)(i + 1)));
		name = NULL;
	}
	return h;
}

static uint32_t prio_of(Hashmap *order, const char *name)
{
	uintptr_t v = (uintptr_t)hashmap_get(order, name);

	ASSERT_TRUE(v > 0);
	return (uint32_t)(v - 1);
}

static void assert_same(const KBuf *b, const char *expect, size_t expect_size,
			const char *what)
{
	if (b->size != expect_size || memcmp(b->data, expect, expect_size) != 0) {
		size_t i = 0;

		while (i < b->size && i < expect_size && b->data[i] == expect[i])
			i++;
		TEST_FAIL("%s: %zu bytes, depmod wrote %zu; first difference at byte %zu",
			  what, b->size, expect_size, i);
	}
}

/* The fixture's .bin files as depmod wrote them, rebuilt from its text files. */
TEST(fixture_dep_bin)
{
	const char *dir = fixture_dir("full-54");
	_cleanup_free_ char *dep = NULL, *bin = NULL, *copy = NULL;
	_cleanup_kmod_index_free_ KmodIndex *idx = kmod_index_new();
	size_t dep_size, bin_size;
	uint32_t i = 0;
	KBuf b = {};

	dep = read_fixture(dir, "modules.dep", &dep_size);
	bin = read_fixture(dir, "modules.dep.bin", &bin_size);
	for (char *line = dep, *next; *line; line = next, i++) {
		char *colon = strchr(line, ':'), *slash, *dot;
		char name[256];

		next = strchr(line, '\n');
		*next++ = 0;
		*colon = 0;
		slash = strrchr(line, '/');
		snprintf(name, sizeof(name), "%s", slash + 1);
		dot = strchr(name, '.');
		*dot = 0;
		for (char *p = name; *p; p++)
			if (*p == '-')
				*p = '_';
		*colon = ':';
		ASSERT_OK(kmod_index_add(idx, name, line, i));
	}
	ASSERT_OK(kmod_index_write(idx, &b));
	assert_same(&b, bin, bin_size, "modules.dep.bin");
	kbuf_done(&b);
}

TEST(fixture_alias_bin)
{
	const char *dir = fixture_dir("full-54");
	_cleanup_free_ char *dep = NULL, *alias = NULL, *bin = NULL;
	_cleanup_kmod_index_free_ KmodIndex *idx = kmod_index_new();
	_cleanup_hashmap_free_ Hashmap *order = NULL;
	size_t bin_size;
	KBuf b = {};

	dep = read_fixture(dir, "modules.dep", NULL);
	alias = read_fixture(dir, "modules.alias", NULL);
	bin = read_fixture(dir, "modules.alias.bin", &bin_size);
	order = dep_order(dep);
	for (char *line = alias, *next; *line; line = next) {
		char *sp;
		char norm[4096];

		next = strchr(line, '\n');
		*next++ = 0;
		if (line[0] == '#')
			continue;
		ASSERT_TRUE(startswith(line, "alias "));
		sp = strrchr(line, ' ');
		*sp = 0;
		if (kmod_alias_normalize(line + 6, norm) < 0)
			continue;
		ASSERT_OK(kmod_index_add(idx, norm, sp + 1, prio_of(order, sp + 1)));
	}
	ASSERT_OK(kmod_index_write(idx, &b));
	assert_same(&b, bin, bin_size, "modules.alias.bin");
	kbuf_done(&b);
}

TEST(fixture_symbols_bin)
{
	const char *dir = fixture_dir("full-54");
	_cleanup_free_ char *dep = NULL, *syms = NULL, *bin = NULL;
	_cleanup_kmod_index_free_ KmodIndex *idx = kmod_index_new();
	_cleanup_hashmap_free_ Hashmap *order = NULL;
	size_t bin_size;
	KBuf b = {};

	dep = read_fixture(dir, "modules.dep", NULL);
	syms = read_fixture(dir, "modules.symbols", NULL);
	bin = read_fixture(dir, "modules.symbols.bin", &bin_size);
	order = dep_order(dep);
	for (char *line = syms, *next; *line; line = next) {
		char *sp;

		next = strchr(line, '\n');
		*next++ = 0;
		if (line[0] == '#')
			continue;
		sp = strrchr(line, ' ');
		*sp = 0;
		ASSERT_OK(kmod_index_add(idx, line + 6, sp + 1, prio_of(order, sp + 1)));
	}
	ASSERT_OK(kmod_index_write(idx, &b));
	assert_same(&b, bin, bin_size, "modules.symbols.bin");
	ASSERT_OK(kmod_index_check(b.data, b.size, NULL));
	kbuf_done(&b);
}

/* ---- kmod_index_patch() ---- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return n ? (uint32_t)((rng_state >> 33) % n) : 0;
}

typedef struct TEntry {
	char key[12];
	unsigned mod;
} TEntry;

/* Random key sets over a tiny alphabet (shared prefixes, keys that are prefixes of others,
 * duplicates); modules dropped, reordered and added, as an update does, or (one time in three)
 * only added after the others, patched without a remap; the patch must equal a full write of
 * the result. */
TEST(patch_random)
{
	static const char alphabet[] = "ab*-[";
	unsigned iterations = getenv("KMODD_SANITIZE") ? 600 : 4000;

	rng_state = 20261124;
	for (unsigned it = 0; it < iterations; it++) {
		unsigned n_mods = 1 + rnd(12), n_new = rnd(4), n_entries = rnd(40);
		unsigned total = n_mods + n_new;
		bool verbatim = rnd(3) == 0;
		TEntry e[80];
		unsigned n_e = 0, oldpos[16], newpos[16], perm[16], n_alive = 0;
		bool alive[16];
		uint32_t remap[16];
		_cleanup_kmod_index_free_ KmodIndex *a = kmod_index_new();
		_cleanup_kmod_index_free_ KmodIndex *b = kmod_index_new();
		_cleanup_kmod_index_free_ KmodIndex *add = kmod_index_new();
		KBuf A = {}, B = {}, P = {};
		char name[16];

		ASSERT_TRUE(a && b && add);
		/* old order: a random permutation of the old modules */
		for (unsigned m = 0; m < n_mods; m++)
			perm[m] = m;
		for (unsigned m = n_mods; m > 1; m--) {
			unsigned j = rnd(m), t = perm[m - 1];
			perm[m - 1] = perm[j];
			perm[j] = t;
		}
		for (unsigned i = 0; i < n_mods; i++)
			oldpos[perm[i]] = i;
		for (unsigned i = 0; i < n_entries + n_new * 3; i++) {
			unsigned len = rnd(7);

			for (unsigned k = 0; k < len; k++)
				e[n_e].key[k] = alphabet[rnd(sizeof(alphabet) - 1)];
			e[n_e].key[len] = 0;
			/* the first n_entries belong to old modules, the rest to new ones */
			e[n_e].mod = i < n_entries ? rnd(n_mods) : n_mods + rnd(n_new ? n_new : 1);
			if (e[n_e].mod >= total)
				continue;
			n_e++;
		}
		for (unsigned i = 0; i < n_e; i++)
			if (e[i].mod < n_mods) {
				snprintf(name, sizeof(name), "m%u", e[i].mod);
				ASSERT_OK(kmod_index_add(a, e[i].key, name, oldpos[e[i].mod]));
			}
		ASSERT_OK(kmod_index_write(a, &A));

		/* new generation: some old modules dropped, the rest and the new ones reordered */
		for (unsigned m = 0; m < total; m++) {
			alive[m] = m >= n_mods || rnd(4) != 0;
			if (alive[m])
				perm[n_alive++] = m;
		}
		if (rnd(2) && !verbatim)
			for (unsigned m = n_alive; m > 1; m--) {
				unsigned j = rnd(m), t = perm[m - 1];
				perm[m - 1] = perm[j];
				perm[j] = t;
			}
		for (unsigned i = 0; i < n_alive; i++)
			newpos[perm[i]] = i;
		if (verbatim)
			/* every old module where it was, the new ones after them */
			for (unsigned m = 0; m < total; m++) {
				alive[m] = true;
				newpos[m] = m < n_mods ? oldpos[m] : m;
			}
		for (unsigned m = 0; m < n_mods; m++)
			remap[oldpos[m]] = alive[m] ? newpos[m] : KMOD_INDEX_DROP;
		for (unsigned i = 0; i < n_e; i++) {
			if (!alive[e[i].mod])
				continue;
			snprintf(name, sizeof(name), "m%u", e[i].mod);
			ASSERT_OK(kmod_index_add(b, e[i].key, name, newpos[e[i].mod]));
			if (e[i].mod >= n_mods)
				ASSERT_OK(kmod_index_add(add, e[i].key, name, newpos[e[i].mod]));
		}
		ASSERT_OK(kmod_index_write(b, &B));
		ASSERT_OK(kmod_index_patch(A.data, A.size, verbatim ? NULL : remap, n_mods, add, &P));
		if (P.size != B.size || memcmp(P.data, B.data, B.size) != 0)
			TEST_FAIL("iteration %u%s: patched %zu bytes, full write %zu", it,
				  verbatim ? " (no remap)" : "", P.size, B.size);
		kbuf_done(&A);
		kbuf_done(&B);
		kbuf_done(&P);
	}
}

/* Every truncation of A and every single-byte change of it: an error or a result, never a
 * crash. */
static void patch_every_damage(KBuf *A, const uint32_t *remap, size_t n_remap, KmodIndex *add)
{
	KBuf P = {};

	for (size_t n = 0; n < A->size; n++) {
		(void)kmod_index_patch(A->data, n, remap, n_remap, add, &P);
		P.size = 0;
	}
	for (size_t i = 0; i < A->size; i++)
		for (unsigned v = 0; v < 256; v += 17) {
			char saved = A->data[i];

			A->data[i] = (char)v;
			(void)kmod_index_patch(A->data, A->size, remap, n_remap, add, &P);
			P.size = 0;
			A->data[i] = saved;
		}
	kbuf_done(&P);
}

TEST(patch_rejects_corruption)
{
	_cleanup_kmod_index_free_ KmodIndex *a = kmod_index_new();
	uint32_t remap[4] = { 0, 1, 2, 3 };
	KBuf A = {}, P = {};

	ASSERT_TRUE(a);
	ASSERT_OK(kmod_index_add(a, "abc", "m0", 0));
	ASSERT_OK(kmod_index_add(a, "abd", "m1", 1));
	ASSERT_OK(kmod_index_write(a, &A));
	patch_every_damage(&A, remap, 4, NULL);
	/* the same without a remap, with an add beside the copied subtrees */
	{
		_cleanup_kmod_index_free_ KmodIndex *add = kmod_index_new();

		ASSERT_TRUE(add);
		ASSERT_OK(kmod_index_add(add, "ab", "m2", 2));
		patch_every_damage(&A, NULL, 0, add);
	}
	/* a priority beyond the map */
	ASSERT_ERROR(kmod_index_patch(A.data, A.size, remap, 1, NULL, &P), EBADMSG);
	kbuf_done(&A);
	kbuf_done(&P);
}

/* The fixture's modules.alias.bin with one module moved to the end (an override in
 * updates/) and with one module replaced by a new one with other aliases. */
/* Patches bin into *P a few times (the patch must succeed); the best time in ms. */
static double patch_best_ms(const char *bin, size_t bin_size, const uint32_t *remap, size_t n,
			    KmodIndex *add, KBuf *P)
{
	double best = 1e9;

	for (int run = 0; run < 5; run++) {
		struct timespec a, b;
		double t;

		P->size = 0;
		clock_gettime(CLOCK_MONOTONIC, &a);
		ASSERT_OK(kmod_index_patch(bin, bin_size, remap, n, add, P));
		clock_gettime(CLOCK_MONOTONIC, &b);
		t = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
		best = t < best ? t : best;
	}
	return best;
}

TEST(patch_fixture_alias_bin)
{
	const char *dir = fixture_dir("full-54");
	_cleanup_free_ char *dep = NULL, *alias = NULL, *bin = NULL;
	_cleanup_hashmap_free_ Hashmap *order = NULL;
	_cleanup_free_ uint32_t *remap = NULL;
	size_t bin_size, n;
	uint32_t k;
	char *lines[40000];
	size_t n_lines = 0;
	double best;

	dep = read_fixture(dir, "modules.dep", NULL);
	alias = read_fixture(dir, "modules.alias", NULL);
	bin = read_fixture(dir, "modules.alias.bin", &bin_size);
	order = dep_order(dep);
	n = hashmap_size(order);
	k = prio_of(order, "e1000");
	remap = calloc(n, sizeof(uint32_t));
	ASSERT_TRUE(remap);
	for (uint32_t p = 0; p < n; p++)
		remap[p] = p < k ? p : p == k ? (uint32_t)n - 1 : p - 1;
	for (char *line = alias, *next; *line && n_lines < ELEMENTSOF(lines); line = next) {
		next = strchr(line, '\n');
		*next++ = 0;
		if (line[0] != '#')
			lines[n_lines++] = line;
	}

	for (int variant = 0; variant < 3; variant++) {
		_cleanup_kmod_index_free_ KmodIndex *full = kmod_index_new();
		_cleanup_kmod_index_free_ KmodIndex *add = kmod_index_new();
		KBuf B = {}, P = {};

		ASSERT_TRUE(full && add);
		for (size_t i = 0; i < n_lines; i++) {
			char buf[4096], norm[4096], *sp;
			uint32_t p;

			snprintf(buf, sizeof(buf), "%s", lines[i]);
			sp = strrchr(buf, ' ');
			*sp = 0;
			if (kmod_alias_normalize(buf + 6, norm) < 0)
				continue;
			p = remap[prio_of(order, sp + 1)];
			if (variant > 0 && streq(sp + 1, "e1000")) {
				/* replaced: variant 1 with the same aliases, 2 with other ones */
				if (variant == 2)
					strcat(norm, "-kmodd");
				ASSERT_OK(kmod_index_add(add, norm, "e1000", p));
			}
			ASSERT_OK(kmod_index_add(full, norm, sp + 1, p));
		}
		ASSERT_OK(kmod_index_write(full, &B));
		if (variant > 0)
			remap[k] = KMOD_INDEX_DROP;
		best = patch_best_ms(bin, bin_size, remap, n, add, &P);
		remap[k] = (uint32_t)n - 1;
		if (P.size != B.size || memcmp(P.data, B.data, B.size) != 0)
			TEST_FAIL("variant %d: patched %zu bytes, full write %zu", variant, P.size,
				  B.size);
		printf("# modules.alias.bin patched in %.2f ms (variant %d)\n", best, variant);
		kbuf_done(&B);
		kbuf_done(&P);
	}
	/* the identity reproduces the file */
	{
		KBuf P = {};

		for (uint32_t p = 0; p < n; p++)
			remap[p] = p;
		ASSERT_OK(kmod_index_patch(bin, bin_size, remap, n, NULL, &P));
		assert_same(&P, bin, bin_size, "modules.alias.bin (identity patch)");
		kbuf_done(&P);
	}
}

/* The fixture's modules.dep.bin and modules.symbols.bin patched with every priority kept:
 * the same bytes, each node copied with its values checked and renumbered. */
TEST(patch_fixture_dep_symbols_bin)
{
	static const char *const names[] = { "modules.dep.bin", "modules.symbols.bin" };
	const char *dir = fixture_dir("full-54");
	_cleanup_free_ char *dep = NULL;
	_cleanup_hashmap_free_ Hashmap *order = NULL;
	_cleanup_free_ uint32_t *remap = NULL;
	size_t n;

	dep = read_fixture(dir, "modules.dep", NULL);
	order = dep_order(dep);
	n = hashmap_size(order);
	remap = calloc(n, sizeof(uint32_t));
	ASSERT_TRUE(remap);
	for (uint32_t p = 0; p < n; p++)
		remap[p] = p;
	for (size_t f = 0; f < ELEMENTSOF(names); f++) {
		_cleanup_free_ char *bin = NULL;
		double best;
		size_t bin_size;
		KBuf P = {};

		bin = read_fixture(dir, names[f], &bin_size);
		best = patch_best_ms(bin, bin_size, remap, n, NULL, &P);
		assert_same(&P, bin, bin_size, names[f]);
		printf("# %s patched in %.2f ms (identity)\n", names[f], best);
		kbuf_done(&P);
	}
}

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

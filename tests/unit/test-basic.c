/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fileio.h"
#include "hashmap.h"
#include "strv.h"
#include "tests.h"

TEST(strv_split_join)
{
	_cleanup_strv_free_ char **l = NULL;
	_cleanup_free_ char *j = NULL;

	ASSERT_OK(strv_split("b,a,,c", ",", &l));
	ASSERT_EQ(strv_length(l), 3);
	strv_sort(l);
	j = strv_join(l, " ");
	ASSERT_STREQ(j, "a b c");
	ASSERT_TRUE(strv_contains(l, "c"));
	ASSERT_TRUE(!strv_contains(l, "d"));
}

TEST(strv_split_empty)
{
	_cleanup_strv_free_ char **l = NULL;

	ASSERT_OK(strv_split("", ",", &l));
	ASSERT_TRUE(l != NULL);
	ASSERT_EQ(strv_length(l), 0);
}

TEST(hashmap_put_get_remove)
{
	_cleanup_hashmap_free_ Hashmap *h = hashmap_new(free, NULL);
	char key[32];
	const char *k;
	void *v;
	size_t n = 0;

	ASSERT_TRUE(h);
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "sym%d", i);
		ASSERT_OK(hashmap_put(h, strdup(key), (void *)(intptr_t)(i + 1)));
	}
	ASSERT_EQ(hashmap_size(h), 10000);
	ASSERT_EQ((intptr_t)hashmap_get(h, "sym4242"), 4243);
	ASSERT_ERROR(hashmap_put(h, "sym1", NULL), EEXIST);
	ASSERT_EQ((intptr_t)hashmap_remove(h, "sym1"), 2);
	ASSERT_TRUE(!hashmap_contains(h, "sym1"));
	HASHMAP_FOREACH_KEY(v, k, h)
		n++;
	ASSERT_EQ(n, 9999);
}

TEST(path_join)
{
	_cleanup_free_ char *a = path_join("/", "lib/modules", "6.1");
	_cleanup_free_ char *b = path_join("/root/", "/lib/modules/", "x");

	ASSERT_STREQ(a, "/lib/modules/6.1");
	ASSERT_STREQ(b, "/root/lib/modules/x");
}

TEST(write_read_atomic)
{
	char dir[] = "/tmp/kmodd-test-XXXXXX";
	_cleanup_free_ char *p = NULL, *data = NULL;
	size_t n;

	ASSERT_TRUE(mkdtemp(dir));
	p = path_join(dir, "f");
	ASSERT_OK(write_file_atomic(p, "hello\n", 6, 0644));
	ASSERT_OK(read_full_file(p, 0, &data, &n));
	ASSERT_EQ(n, 6);
	ASSERT_STREQ(data, "hello\n");
	ASSERT_ERROR(read_full_file(dir, 0, &data, &n), EISDIR);
	unlink(p);
	rmdir(dir);
}

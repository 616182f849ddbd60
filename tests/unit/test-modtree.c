/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/stat.h>

#include "fileio.h"
#include "modtree.h"
#include "tests.h"

/* The fixture cache (scripts/fixtures.sh); tests skip when it is absent. */
static const char *fixture(const char *which)
{
	static char buf[4096];
	const char *base = getenv("KMODD_FIXTURES");
	const char *home = getenv("HOME");
	struct stat st;

	if (base)
		snprintf(buf, sizeof(buf), "%s/%s", base, which);
	else
		snprintf(buf, sizeof(buf), "%s/.cache/kmodd/fixtures/%s", home ?: "/root", which);
	if (stat(buf, &st) < 0)
		SKIP("fixture %s not unpacked (scripts/fixtures.sh)", buf);
	return buf;
}

TEST(flavour)
{
	_cleanup_free_ char *a = kernel_flavour("6.1.0-54-amd64");
	_cleanup_free_ char *b = kernel_flavour("5.14.21-150500.55.19-default");
	_cleanup_free_ char *c = kernel_flavour("6.8.0");

	ASSERT_STREQ(a, "amd64");
	ASSERT_STREQ(b, "default");
	ASSERT_STREQ(c, "6.8.0");
}

TEST(name_from_path)
{
	_cleanup_free_ char *a = module_name_from_path("kernel/drivers/usb/host/ehci-hcd.ko.xz");
	_cleanup_free_ char *b = module_name_from_path("e1000.ko");

	ASSERT_STREQ(a, "ehci_hcd");
	ASSERT_STREQ(b, "e1000");
}

TEST(base_tree)
{
	_cleanup_modtree_free_ ModTree *t = NULL;
	const char *root = fixture("base-54");
	const Module *m;

	ASSERT_OK(modtree_open(root, "6.1.0-54-amd64", MODTREE_REQUIRE_INDEX, &t, NULL));
	ASSERT_OK(modtree_load_modules(t));
	ASSERT_OK(modtree_load_symvers(t, NULL, NULL));
	ASSERT_TRUE(t->symvers);
	ASSERT_TRUE(t->n_modules > 10);
	m = modtree_get(t, "virtio_net");
	ASSERT_TRUE(m);
	ASSERT_STREQ(m->path, "kernel/drivers/net/virtio_net.ko");
	ASSERT_TRUE(m->n_requires > 0);
	ASSERT_STREQ(m->license, "GPL");
	ASSERT_TRUE(m->signer);
	/* every required symbol a Debian module has is known to that kernel */
	for (size_t i = 0; i < m->n_requires; i++)
		ASSERT_TRUE(symvers_get(t->symvers, m->requires[i].symbol));
}

TEST(missing_tree)
{
	_cleanup_modtree_free_ ModTree *t = NULL;
	_cleanup_free_ char *bad = NULL;

	ASSERT_ERROR(modtree_open("/nonexistent-root", "1.2.3", 0, &t, &bad), ENOENT);
	ASSERT_STREQ(bad, "/nonexistent-root/lib/modules/1.2.3");
}

TEST(symvers_malformed)
{
	char dir[] = "/tmp/kmodd-test-XXXXXX";
	_cleanup_free_ char *p = NULL;
	Symvers *s = NULL;
	unsigned line = 0;
	const char *text = "0x12345678\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n"
			   "0x1\tbar\tdrivers/x\tEXPORT_SYMBOL_GPL\tNS\n"
			   "garbage\n";

	ASSERT_TRUE(mkdtemp(dir));
	p = path_join(dir, "Module.symvers");
	ASSERT_OK(write_file_atomic(p, text, strlen(text) - 8, 0644));
	ASSERT_OK(symvers_load(p, &s, &line));
	ASSERT_EQ(s->n_entries, 2);
	ASSERT_EQ(symvers_get(s, "foo")->crc, 0x12345678);
	ASSERT_STREQ(symvers_get(s, "bar")->ns, "NS");
	s = symvers_free(s);
	ASSERT_OK(write_file_atomic(p, text, strlen(text), 0644));
	ASSERT_ERROR(symvers_load(p, &s, &line), EBADMSG);
	ASSERT_EQ(line, 3);
	unlink(p);
	rmdir(dir);
}

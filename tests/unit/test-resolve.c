/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The resolver on a small synthetic root: a kernel 6.1.0-1-amd64 with one module "base"
 * (exporting bar), vmlinux exporting foo, and a handwritten rpm-md primary.xml. */
#include <sys/stat.h>

#include "fileio.h"
#include "resolve.h"
#include "strv.h"
#include "tests.h"

#define KVER "6.1.0-1-amd64"

static const char primary[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<metadata xmlns=\"http://linux.duke.edu/metadata/common\" "
	"xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"7\">\n"
	/* e1000: needs vmlinux's foo; serves an Intel NIC */
	"<package type=\"rpm\"><name>e1000-kmp-amd64</name><arch>x86_64</arch>"
	"<version epoch=\"0\" ver=\"1\" rel=\"1\"/>"
	"<checksum type=\"sha256\" pkgid=\"YES\">"
	"1111111111111111111111111111111111111111111111111111111111111111</checksum>"
	"<location href=\"x86_64/e1000-kmp-amd64-1-1.x86_64.rpm\"/>"
	"<size package=\"1000\" installed=\"2000\" archive=\"2100\"/>"
	"<format><rpm:provides><rpm:entry name=\"kmod(e1000.ko)\"/></rpm:provides>"
	"<rpm:requires><rpm:entry name=\"ksym(amd64:foo)\" flags=\"EQ\" epoch=\"0\" ver=\"1a2b\"/>"
	"</rpm:requires><rpm:supplements>"
	"<rpm:entry name=\"modalias(kernel-amd64:pci:v00008086d0000100Esv*sd*bc*sc*i*)\"/>"
	"</rpm:supplements></format></package>\n"
	/* another Intel device's driver: must not come along */
	"<package type=\"rpm\"><name>snd-kmp-amd64</name><arch>x86_64</arch>"
	"<version epoch=\"0\" ver=\"1\" rel=\"1\"/><location href=\"x86_64/snd.rpm\"/>"
	"<format><rpm:provides><rpm:entry name=\"kmod(snd.ko)\"/></rpm:provides>"
	"<rpm:supplements><rpm:entry name=\"modalias(kernel-amd64:pci:v00008086d00002668sv*)\"/>"
	"</rpm:supplements></format></package>\n"
	/* needs an export of the tree's module "base", and pulls in helper */
	"<package type=\"rpm\"><name>usbnet-kmp-amd64</name><arch>x86_64</arch>"
	"<version epoch=\"0\" ver=\"1\" rel=\"1\"/><location href=\"x86_64/usbnet.rpm\"/>"
	"<format><rpm:provides><rpm:entry name=\"kmod(usbnet.ko)\"/></rpm:provides>"
	"<rpm:requires><rpm:entry name=\"ksym(amd64:bar)\" flags=\"EQ\" epoch=\"0\" ver=\"beef\"/>"
	"<rpm:entry name=\"kmod(base.ko)\"/><rpm:entry name=\"helper-kmp-amd64\"/></rpm:requires>"
	"<rpm:recommends><rpm:entry name=\"kmod(platform:dma.ko)\"/></rpm:recommends>"
	"<rpm:supplements><rpm:entry name=\"modalias(kernel-amd64:usb:v0BDAp8153d*)\"/>"
	"</rpm:supplements></format></package>\n"
	"<package type=\"rpm\"><name>helper-kmp-amd64</name><arch>x86_64</arch>"
	"<version epoch=\"0\" ver=\"1\" rel=\"1\"/><location href=\"x86_64/helper.rpm\"/>"
	"<format><rpm:provides><rpm:entry name=\"kmod(helper.ko)\"/></rpm:provides></format>"
	"</package>\n"
	/* a softdep on an alias: pre: platform:dma */
	"<package type=\"rpm\"><name>dma-kmp-amd64</name><arch>x86_64</arch>"
	"<version epoch=\"0\" ver=\"1\" rel=\"1\"/><location href=\"x86_64/dma.rpm\"/>"
	"<format><rpm:provides><rpm:entry name=\"kmod(dma.ko)\"/></rpm:provides>"
	"<rpm:supplements><rpm:entry name=\"modalias(kernel-amd64:platform:dma)\"/>"
	"</rpm:supplements></format></package>\n"
	/* built for another kernel: foo with another CRC */
	"<package type=\"rpm\"><name>old-kmp-amd64</name><arch>x86_64</arch>"
	"<version epoch=\"0\" ver=\"1\" rel=\"1\"/><location href=\"x86_64/old.rpm\"/>"
	"<format><rpm:provides><rpm:entry name=\"kmod(old.ko)\"/></rpm:provides>"
	"<rpm:requires><rpm:entry name=\"ksym(amd64:foo)\" flags=\"EQ\" epoch=\"0\" ver=\"9999\"/>"
	"</rpm:requires></format></package>\n"
	/* a repository's base package with that CRC: never replaces the running kernel */
	"<package type=\"rpm\"><name>kernel-amd64</name><arch>x86_64</arch>"
	"<version epoch=\"0\" ver=\"9\" rel=\"1\"/><location href=\"x86_64/kernel.rpm\"/>"
	"<format><rpm:provides><rpm:entry name=\"ksym(amd64:foo)\" flags=\"EQ\" epoch=\"0\" "
	"ver=\"9999\"/></rpm:provides></format></package>\n"
	"</metadata>\n";

static char root[] = "/tmp/test-resolve.XXXXXX";
/* set once the tree exists: mkdtemp may put an X anywhere in the name, so the
 * template cannot tell */
static bool root_made;

static void write_at(const char *rel, const char *text)
{
	_cleanup_free_ char *p = path_join(root, rel), *d = NULL;

	ASSERT_TRUE(p);
	d = strndup(p, (size_t)(strrchr(p, '/') - p));
	ASSERT_OK(mkdir_p(d, 0755));
	ASSERT_OK(write_file_atomic(p, text, strlen(text), 0644));
}

static void setup(Resolver **ret)
{
	_cleanup_free_ char *xml = NULL;

	if (!root_made) {
		ASSERT_TRUE(mkdtemp(root));
		root_made = true;
		write_at("lib/modules/" KVER "/modules.dep", "kernel/drivers/base.ko:\n");
		write_at("usr/src/linux-headers-" KVER "/Module.symvers",
			 "0x00001a2b\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n"
			 "0x0000beef\tbar\tdrivers/base\tEXPORT_SYMBOL_GPL\t\n"
			 "0x00000042\tbaz\tdrivers/absent\tEXPORT_SYMBOL\t\n");
		write_at("repo/primary.xml", primary);
	}
	xml = path_join(root, "repo/primary.xml");
	ASSERT_OK(resolver_new_bare(root, KVER, ret));
	ASSERT_OK(resolver_add_repo_file(*ret, "test", xml, "http://127.0.0.1/repo"));
	ASSERT_OK(resolver_prepare(*ret));
}

static char *names(const ResolveResult *res)
{
	_cleanup_strv_free_ char **l = NULL;

	for (size_t i = 0; i < res->n_install; i++)
		if (strv_extend(&l, res->install[i].name) < 0)
			return NULL;
	strv_sort(l);
	return strv_join(l, " ");
}

TEST(resolve_modalias_exactly)
{
	_cleanup_resolver_free_ Resolver *r = NULL;
	_cleanup_(resolve_result_done) ResolveResult res = {};
	_cleanup_free_ char *n = NULL;
	char *need[] = { "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", NULL };

	setup(&r);
	ASSERT_OK(resolver_solve(r, NEED_MODALIAS, need, INSTALL_REASON_HOTPLUG, need[0],
				 &res));
	n = names(&res);
	ASSERT_STREQ(n, "e1000-kmp-amd64");
	ASSERT_STREQ(res.install[0].url,
		     "http://127.0.0.1/repo/x86_64/e1000-kmp-amd64-1-1.x86_64.rpm");
	ASSERT_STREQ(res.install[0].checksum,
		     "1111111111111111111111111111111111111111111111111111111111111111");
	ASSERT_EQ(res.install[0].download_size, 1000);
	ASSERT_EQ(res.install[0].reason, INSTALL_REASON_HOTPLUG);
	ASSERT_STREQ(res.install[0].device, need[0]);
	ASSERT_TRUE(strv_contains(
		res.install[0].supplements,
		"modalias(kernel-amd64:pci:v00008086d0000100Esv*sd*bc*sc*i*)"));
	ASSERT_TRUE(strv_contains(res.install[0].requires, "ksym(amd64:foo) = 1a2b"));
	ASSERT_STREQ(res.modules[0], "e1000");
	ASSERT_TRUE(!res.already);
}

TEST(resolve_dependencies_softdeps_and_the_tree)
{
	_cleanup_resolver_free_ Resolver *r = NULL;
	_cleanup_(resolve_result_done) ResolveResult res = {}, again = {};
	_cleanup_free_ char *n = NULL;
	char *need[] = { "usb:v0BDAp8153d0100dc00dsc00dp00icFFiscFFip00in00", NULL };
	char *e1000[] = { "pci:v00008086d0000100Esv0sd0bc0sc0i0", NULL };

	setup(&r);
	ASSERT_OK(resolver_set_requested_by(r, "test"));
	ASSERT_OK(resolver_solve(r, NEED_MODALIAS, need, INSTALL_REASON_USER, NULL, &res));
	n = names(&res);
	/* helper by Requires, dma by the softdep on its alias, base from the tree */
	ASSERT_STREQ(n, "dma-kmp-amd64 helper-kmp-amd64 usbnet-kmp-amd64");
	for (size_t i = 0; i < res.n_install; i++) {
		ASSERT_EQ(res.install[i].reason,
			  streq(res.install[i].name, "usbnet-kmp-amd64") ?
				  INSTALL_REASON_USER :
				  INSTALL_REASON_DEPENDENCY);
		ASSERT_STREQ(res.install[i].requested_by, "test");
	}
	/* dependencies first */
	ASSERT_STREQ(res.install[res.n_install - 1].name, "usbnet-kmp-amd64");

	/* the namespace answers of the previous modalias do not linger */
	ASSERT_OK(resolver_solve(r, NEED_MODALIAS, e1000, INSTALL_REASON_USER, NULL,
				 &again));
	free(n);
	n = names(&again);
	ASSERT_STREQ(n, "e1000-kmp-amd64");
}

TEST(resolve_problems_in_plain_words)
{
	_cleanup_resolver_free_ Resolver *r = NULL;
	_cleanup_(resolve_result_done) ResolveResult res = {}, none = {}, nomod = {};
	char *old[] = { "old", NULL };
	char *nothing[] = { "pci:v0000FFFFd0000FFFF", NULL };
	char *missing[] = { "nosuch", NULL };

	setup(&r);
	ASSERT_ERROR(resolver_solve(r, NEED_MODULE, old, INSTALL_REASON_USER, NULL, &res),
		     EDEADLK);
	ASSERT_EQ(strv_length(res.problems), 1);
	ASSERT_STREQ(
		res.problems[0],
		"no repository offers ksym(amd64:foo) = 9999 needed by "
		"old-kmp-amd64-1-1.x86_64 for kernel " KVER
		" (the kernel exports it with CRC 1a2b: a KMP built for another kernel)");
	ASSERT_EQ(res.n_install, 0);

	ASSERT_ERROR(resolver_solve(r, NEED_MODALIAS, nothing, INSTALL_REASON_USER, NULL,
				    &none),
		     ENOENT);
	ASSERT_TRUE(strstr(none.problems[0],
			   "nothing provides modalias pci:v0000FFFFd0000FFFF"));
	ASSERT_ERROR(resolver_solve(r, NEED_MODULE, missing, INSTALL_REASON_USER, NULL,
				    &nomod),
		     ENOENT);
	ASSERT_TRUE(strstr(nomod.problems[0], "no repository offers module nosuch"));
}

TEST(resolve_already_and_by_name)
{
	_cleanup_resolver_free_ Resolver *r = NULL;
	_cleanup_(resolve_result_done) ResolveResult res = {}, pkg = {}, cap = {};
	_cleanup_free_ char *n = NULL;
	char *base[] = { "base", NULL };
	char *helper[] = { "helper-kmp-amd64", NULL };
	char *ksym[] = { "ksym(amd64:bar) = beef", NULL };
	Queue q;

	setup(&r);
	ASSERT_OK(resolver_solve(r, NEED_MODULE, base, INSTALL_REASON_USER, NULL, &res));
	ASSERT_TRUE(res.already);
	ASSERT_EQ(res.n_install, 0);
	ASSERT_OK(
		resolver_solve(r, NEED_PACKAGE, helper, INSTALL_REASON_USER, NULL, &pkg));
	n = names(&pkg);
	ASSERT_STREQ(n, "helper-kmp-amd64");
	ASSERT_STREQ(pkg.modules[0], "helper");
	/* the kernel provides the exports of the modules its tree has, not of others */
	ASSERT_OK(resolver_solve(r, NEED_CAPABILITY, ksym, INSTALL_REASON_USER, NULL,
				 &cap));
	ASSERT_TRUE(cap.already);
	ASSERT_TRUE(resolver_module_installed(r, "base"));
	ASSERT_TRUE(!resolver_module_installed(r, "absent"));

	queue_init(&q);
	ASSERT_OK(resolver_what_provides(r, "ksym(amd64:baz) = 42", false, &q));
	ASSERT_EQ(q.count, 0);
	ASSERT_OK(resolver_what_provides(r, "pci:v00008086d00002668sv0sd0", true, &q));
	ASSERT_EQ(q.count, 1);
	queue_free(&q);
}

TEST(resolve_cleanup)
{
	_cleanup_free_ char *cmd = NULL;

	if (!root_made)
		return;
	ASSERT_TRUE(asprintf(&cmd, "rm -rf '%s'", root) > 0);
	ASSERT_EQ(system(cmd), 0);
}

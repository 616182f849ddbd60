/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The rpm writer (kmp.c) and the rpm-md writer (rpmmd.c): packages librpm reads and
 * verifies, payloads it lists, damage it detects, byte-identical output, XML escaping. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>

#include "fileio.h"
#include "kmp.h"
#include "rpmmd.h"
#include "strv.h"
#include "tests.h"

static char *make_tmpdir(void)
{
	char *d = strdup("/tmp/kmodd-test-kmp.XXXXXX");

	if (!d || !mkdtemp(d)) {
		free(d);
		return NULL;
	}
	return d;
}

static void rm_rf(const char *d)
{
	char *cmd = NULL;

	if (asprintf(&cmd, "rm -rf '%s'", d) >= 0 && system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", d);
	free(cmd);
}

static int write_source(const char *dir, const char *name, const char *content, char **ret)
{
	char *p = path_join(dir, name);
	int r;

	if (!p)
		return -ENOMEM;
	r = write_file_atomic(p, content, strlen(content), 0644);
	if (r < 0) {
		free(p);
		return r;
	}
	*ret = p;
	return 0;
}

/* A package with two files in two directories and one dependency of every kind. */
static int make_package(const char *dir, KmpPackage **ret)
{
	_cleanup_kmp_package_free_ KmpPackage *p = NULL;
	_cleanup_free_ char *a = NULL, *b = NULL;
	int r;

	if ((r = write_source(dir, "a.src", "first file\n", &a)) < 0 ||
	    (r = write_source(dir, "b.src", "second file, a bit longer\n", &b)) < 0)
		return r;
	p = kmp_package_new("foo-kmp-default", "6.1.190", "1", "x86_64");
	if (!p)
		return -ENOMEM;
	p->buildtime = 1700000000;
	if ((r = kmp_package_set(&p->summary, "Kernel module foo")) < 0 ||
	    (r = kmp_package_set(&p->description, "Foo & <bar> \"quoted\"\n\xff invalid")) < 0 ||
	    (r = kmp_package_set(&p->sourcerpm, "kernel-default-6.1.190-1.src.rpm")) < 0)
		return r;
	if ((r = kmp_package_add_dep(p, KMP_DEP_PROVIDES, "kmod(foo.ko)", 0, NULL)) < 0 ||
	    (r = kmp_package_add_dep(p, KMP_DEP_PROVIDES, "ksym(default:foo_fn)", KMP_DEP_EQUAL,
				     "1a2b")) < 0 ||
	    /* a duplicate, dropped when writing */
	    (r = kmp_package_add_dep(p, KMP_DEP_PROVIDES, "kmod(foo.ko)", 0, NULL)) < 0 ||
	    (r = kmp_package_add_dep(p, KMP_DEP_REQUIRES, "ksym(default:printk)", KMP_DEP_EQUAL,
				     "c0ffee")) < 0 ||
	    (r = kmp_package_add_dep(p, KMP_DEP_REQUIRES, "rpmlib(PayloadIsZstd)",
				     KMP_DEP_RPMLIB | KMP_DEP_LESS | KMP_DEP_EQUAL,
				     "5.4.18-1")) < 0 ||
	    (r = kmp_package_add_dep(p, KMP_DEP_RECOMMENDS, "kmod(bar.ko)", 0, NULL)) < 0 ||
	    (r = kmp_package_add_dep(p, KMP_DEP_SUPPLEMENTS,
				     "modalias(kernel-default:pci:v00008086d*)", 0, NULL)) < 0)
		return r;
	if ((r = kmp_package_add_file(p, "/lib/modules/6.1.0-1-default/updates/z/foo.ko", b,
				      1600000000)) < 0 ||
	    (r = kmp_package_add_file(p, "/lib/modules/6.1.0-1-default/updates/a/foo.conf", a,
				      1600000000)) < 0)
		return r;
	*ret = TAKE_PTR(p);
	return 0;
}

static int run(const char *cmd)
{
	int status = system(cmd);

	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(write_verify_list)
{
	_cleanup_free_ char *dir = make_tmpdir(), *name = NULL, *path = NULL;
	_cleanup_kmp_package_free_ KmpPackage *p = NULL;
	_cleanup_strv_free_ char **files = NULL;
	_cleanup_close_ int dfd = -EBADF;
	KmpWritten w;
	struct stat st;

	ASSERT_TRUE(dir);
	ASSERT_OK(kmp_init());
	ASSERT_OK(make_package(dir, &p));
	name = kmp_package_filename(p);
	ASSERT_STREQ(name, "foo-kmp-default-6.1.190-1.x86_64.rpm");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_TRUE(dfd >= 0);
	ASSERT_OK(kmp_package_write(p, dfd, name, &w));
	path = path_join(dir, name);
	ASSERT_TRUE(stat(path, &st) == 0);
	ASSERT_EQ(w.file_size, st.st_size);
	ASSERT_EQ(w.installed_size, strlen("first file\n") + strlen("second file, a bit longer\n"));
	ASSERT_TRUE(w.header_start >= 96 + 16 && w.header_start % 8 == 0);
	ASSERT_TRUE(w.header_end > w.header_start && w.header_end < w.file_size);
	ASSERT_EQ(strlen(w.sha256), 64);
	ASSERT_EQ(p->n_deps[KMP_DEP_PROVIDES], 2); /* duplicate dropped */

	ASSERT_OK(kmp_verify_file(path));
	ASSERT_OK(kmp_payload_list(path, &files));
	ASSERT_EQ(strv_length(files), 2);
	/* sorted by path, as written */
	ASSERT_STREQ(files[0], "/lib/modules/6.1.0-1-default/updates/a/foo.conf");
	ASSERT_STREQ(files[1], "/lib/modules/6.1.0-1-default/updates/z/foo.ko");
	rm_rf(dir);
}

TEST(rpm_cli_agrees)
{
	_cleanup_free_ char *dir = make_tmpdir(), *cmd = NULL;
	_cleanup_kmp_package_free_ KmpPackage *p = NULL;
	_cleanup_close_ int dfd = -EBADF;

	ASSERT_TRUE(dir);
	if (access("/usr/bin/rpm", X_OK) < 0)
		SKIP("rpm not installed");
	ASSERT_OK(kmp_init());
	ASSERT_OK(make_package(dir, &p));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(kmp_package_write(p, dfd, "x.rpm", NULL));
	ASSERT_TRUE(asprintf(&cmd, "cd '%s' && rpm -K x.rpm | grep -q 'digests OK' && "
				   "rpm -qp --provides x.rpm | grep -qx 'ksym(default:foo_fn) = 1a2b' && "
				   "rpm -qp --supplements x.rpm | grep -qx "
				   "'modalias(kernel-default:pci:v00008086d\\*)' && "
				   "rpm -qp --recommends x.rpm | grep -qx 'kmod(bar.ko)' && "
				   "test \"$(rpm -qp --qf '%%{BUILDTIME} %%{SIZE}' x.rpm)\" = "
				   "'1700000000 37' && "
				   "rpm2cpio x.rpm | cpio -i --quiet --to-stdout "
				   "./lib/modules/6.1.0-1-default/updates/z/foo.ko 2>/dev/null | "
				   "grep -qx 'second file, a bit longer'",
			     dir) >= 0);
	ASSERT_EQ(run(cmd), 0);
	rm_rf(dir);
}

TEST(damage_detected)
{
	_cleanup_free_ char *dir = make_tmpdir(), *path = NULL;
	_cleanup_kmp_package_free_ KmpPackage *p = NULL;
	_cleanup_close_ int dfd = -EBADF, fd = -EBADF;
	KmpWritten w;
	char c;

	ASSERT_TRUE(dir);
	ASSERT_OK(kmp_init());
	ASSERT_OK(make_package(dir, &p));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(kmp_package_write(p, dfd, "x.rpm", &w));
	path = path_join(dir, "x.rpm");

	/* a flipped byte in the payload */
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(pread(fd, &c, 1, (off_t)w.file_size - 5), 1);
	c ^= 0x40;
	ASSERT_EQ(pwrite(fd, &c, 1, (off_t)w.file_size - 5), 1);
	ASSERT_ERROR(kmp_verify_file(path), EBADMSG);
	c ^= 0x40;
	ASSERT_EQ(pwrite(fd, &c, 1, (off_t)w.file_size - 5), 1);
	ASSERT_OK(kmp_verify_file(path));

	/* a flipped byte in the main header (its SHA-256 in the signature header) */
	ASSERT_EQ(pread(fd, &c, 1, (off_t)w.header_end - 3), 1);
	c ^= 0x01;
	ASSERT_EQ(pwrite(fd, &c, 1, (off_t)w.header_end - 3), 1);
	ASSERT_TRUE(kmp_verify_file(path) < 0);
	c ^= 0x01;
	ASSERT_EQ(pwrite(fd, &c, 1, (off_t)w.header_end - 3), 1);

	/* truncated payload */
	ASSERT_TRUE(ftruncate(fd, (off_t)w.file_size - 10) == 0);
	ASSERT_TRUE(kmp_verify_file(path) < 0);

	/* not a package at all */
	ASSERT_OK(write_file_atomic(path, "hello", 5, 0644));
	ASSERT_TRUE(kmp_verify_file(path) < 0);
	rm_rf(dir);
}

TEST(byte_identical)
{
	_cleanup_free_ char *dir = make_tmpdir(), *a = NULL, *b = NULL, *da = NULL, *db = NULL;
	_cleanup_kmp_package_free_ KmpPackage *p = NULL, *q = NULL;
	_cleanup_close_ int dfd = -EBADF;
	size_t na, nb;
	KmpWritten wa, wb;

	ASSERT_TRUE(dir);
	ASSERT_OK(kmp_init());
	ASSERT_OK(make_package(dir, &p));
	ASSERT_OK(make_package(dir, &q));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(kmp_package_write(p, dfd, "a.rpm", &wa));
	ASSERT_OK(kmp_package_write(q, dfd, "b.rpm", &wb));
	a = path_join(dir, "a.rpm");
	b = path_join(dir, "b.rpm");
	ASSERT_OK(read_full_file(a, 0, &da, &na));
	ASSERT_OK(read_full_file(b, 0, &db, &nb));
	ASSERT_EQ(na, nb);
	ASSERT_TRUE(memcmp(da, db, na) == 0);
	ASSERT_STREQ(wa.sha256, wb.sha256);
	rm_rf(dir);
}

TEST(crc_format)
{
	char buf[17];

	kmp_format_crc(0x0000abcd, buf);
	ASSERT_STREQ(buf, "abcd");
	kmp_format_crc(0, buf);
	ASSERT_STREQ(buf, "0");
	kmp_format_crc(0xDEADBEEF, buf);
	ASSERT_STREQ(buf, "deadbeef");
}

TEST(naming)
{
	_cleanup_free_ char *a = kmp_module_stem("kernel/sound/pci/hda/snd-hda-intel.ko.xz");
	_cleanup_free_ char *b = kmp_kabi_from_release("6.1.0-54-amd64", "amd64");
	_cleanup_free_ char *c = kmp_kabi_from_release("5.3.18-59.5-default", "default");
	_cleanup_free_ char *d = kmp_package_name("e1000", "amd64", NULL);
	_cleanup_free_ char *e = kmp_package_name("foo", "default", "5.3.18_59.5");

	ASSERT_STREQ(a, "snd-hda-intel");
	ASSERT_STREQ(b, "6.1.0_54");
	ASSERT_STREQ(c, "5.3.18_59.5");
	ASSERT_STREQ(d, "e1000-kmp-amd64");
	ASSERT_STREQ(e, "foo-kmp-default-5.3.18_59.5");
}

TEST(xml_escape)
{
	_cleanup_free_ char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	ASSERT_TRUE(f);
	xml_escape_fputs("a&b<c>\"d\" \xc3\xa9 \xff\x01 \xe2\x82", f);
	fclose(f);
	ASSERT_STREQ(s, "a&amp;b&lt;c&gt;&quot;d&quot; \xc3\xa9 ?? ??");
}

TEST(rpmmd_repository)
{
	_cleanup_free_ char *dir = make_tmpdir(), *repomd = NULL, *xml = NULL, *cmd = NULL;
	_cleanup_kmp_package_free_ KmpPackage *p = NULL;
	_cleanup_close_ int dfd = -EBADF;
	RpmmdEntry e = {};
	KmpWritten w;

	ASSERT_TRUE(dir);
	ASSERT_OK(kmp_init());
	ASSERT_OK(make_package(dir, &p));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(kmp_package_write(p, dfd, "foo.rpm", &w));
	ASSERT_OK(rpmmd_format_package(p, &w, "foo.rpm", 1700000000, &e));
	ASSERT_TRUE(strstr(e.primary, "<rpm:entry name=\"ksym(default:printk)\" flags=\"EQ\" "
				      "epoch=\"0\" ver=\"c0ffee\"/>"));
	ASSERT_TRUE(!strstr(e.primary, "rpmlib(")); /* like createrepo_c */
	ASSERT_TRUE(strstr(e.primary, "Foo &amp; &lt;bar&gt; &quot;quoted&quot;\n? invalid"));
	ASSERT_TRUE(strstr(e.filelists, "<file>/lib/modules/6.1.0-1-default/updates/z/foo.ko"));
	ASSERT_OK(rpmmd_write(dir, &e, 1, 1700000000, 6, 2));
	rpmmd_entry_done(&e);

	repomd = path_join(dir, "repodata/repomd.xml");
	ASSERT_OK(read_full_file(repomd, 0, &xml, NULL));
	ASSERT_TRUE(strstr(xml, "<revision>1700000000</revision>"));
	ASSERT_TRUE(strstr(xml, "<data type=\"primary\">"));
	/* every document is where repomd.xml says, with the checksum it says */
	ASSERT_TRUE(asprintf(&cmd,
			     "cd '%s' && for t in primary filelists other; do "
			     "loc=$(grep -A4 \"type=\\\"$t\\\"\" repodata/repomd.xml | "
			     "sed -n 's/.*href=\"\\(.*\\)\".*/\\1/p'); "
			     "sum=$(grep -A1 \"type=\\\"$t\\\"\" repodata/repomd.xml | "
			     "sed -n 's/.*<checksum type=\"sha256\">\\(.*\\)<.*/\\1/p'); "
			     "test \"$(sha256sum < $loc | cut -d' ' -f1)\" = \"$sum\" || exit 1; "
			     "zcat $loc >/dev/null || exit 1; done",
			     dir) >= 0);
	ASSERT_EQ(run(cmd), 0);
	rm_rf(dir);
}

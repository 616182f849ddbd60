/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/stat.h>

#include "fileio.h"
#include "repo.h"
#include "repomd.h"
#include "strv.h"
#include "tests.h"

static int parse(const char *text, RepoConfig **c, size_t *n, char ***w)
{
	return repo_config_parse("t.repo", text, strlen(text), c, n, w);
}

TEST(repo_config_parse_basic)
{
	_cleanup_strv_free_ char **w = NULL;
	RepoConfig *c = NULL;
	size_t n = 0;

	ASSERT_OK(parse("# comment\n"
			"; another\n"
			"[updates]\n"
			"name = Kernel module updates\n"
			"baseurl=http://127.0.0.1:8080/kmp///\n"
			"enabled=1\n"
			"gpgcheck=0\n"
			"priority=10\n"
			"type=rpm-md\n"
			"autorefresh=1\n"
			"\n"
			"[local]\n"
			"baseurl=file:///srv/repo\n"
			"gpgkey=file:///srv/key.asc\n"
			"sslcacert=/etc/kmodd/ca.pem\n"
			"enabled=no\n",
			&c, &n, &w));
	ASSERT_EQ(n, 2);
	ASSERT_EQ(strv_length(w), 0);
	ASSERT_STREQ(c[0].id, "updates");
	ASSERT_STREQ(c[0].name, "Kernel module updates");
	ASSERT_STREQ(c[0].baseurl, "http://127.0.0.1:8080/kmp");
	ASSERT_STREQ(c[0].file, "t.repo");
	ASSERT_TRUE(c[0].enabled && !c[0].gpgcheck);
	ASSERT_EQ(c[0].priority, 10);
	ASSERT_TRUE(!c[0].gpgkey);
	ASSERT_STREQ(c[1].id, "local");
	ASSERT_TRUE(!c[1].name);
	ASSERT_STREQ(c[1].gpgkey, "file:///srv/key.asc");
	ASSERT_STREQ(c[1].sslcacert, "/etc/kmodd/ca.pem");
	ASSERT_TRUE(!c[0].sslcacert);
	ASSERT_TRUE(!c[1].enabled && c[1].gpgcheck);
	ASSERT_EQ(c[1].priority, 99);
	repo_configs_free(c, n);
}

TEST(repo_config_parse_malformed_lines)
{
	_cleanup_strv_free_ char **w = NULL;
	RepoConfig *c = NULL;
	size_t n = 0;

	ASSERT_OK(parse("orphan=1\n" /* 1 */
			"[a]\n" /* 2 */
			"baseurl=http://h/a\n" /* 3 */
			"garbage line\n" /* 4 */
			"enabled=maybe\n" /* 5 */
			"priority=0\n" /* 6 */
			"colour=blue\n" /* 7 */
			"name=still applies\n" /* 8 */
			"[bad id]\n" /* 9 */
			"baseurl=http://h/b\n" /* 10 */
			"[c]\n" /* 11 */
			"baseurl=ftp://h/c\n" /* 12 */
			"[d\n" /* 13 */
			"[a]\n" /* 14 */
			"baseurl=http://h/again\n" /* 15 */
			"[e]\n" /* 16 */
			"baseurl=http://h/$basearch\n" /* 17 */
			"[f]\n" /* 18 */
			"baseurl=http://h/f http://h/f2\n" /* 19 */
			"  http://h/f3\n", /* 20 */
			&c, &n, &w));
	ASSERT_EQ(n, 2);
	ASSERT_STREQ(c[0].id, "a");
	ASSERT_STREQ(c[0].baseurl, "http://h/a");
	ASSERT_STREQ(c[0].name, "still applies");
	ASSERT_TRUE(c[0].enabled);
	ASSERT_EQ(c[0].priority, 99);
	ASSERT_STREQ(c[1].id, "f");
	ASSERT_STREQ(c[1].baseurl, "http://h/f");

	ASSERT_STREQ(
		w[0],
		"t.repo:1: 'orphan=' before the first [id] section, ignoring the line");
	ASSERT_STREQ(w[1], "t.repo:4: expected 'key=value', ignoring the line");
	ASSERT_STREQ(w[2],
		     "t.repo:5: enabled=maybe is not a boolean (0/1, yes/no), ignoring");
	ASSERT_STREQ(w[3], "t.repo:6: priority=0 is not a number from 1 to 99, ignoring");
	ASSERT_STREQ(w[4], "t.repo:7: unknown key 'colour', ignoring");
	ASSERT_TRUE(startswith(w[5], "t.repo:9: invalid repository id 'bad id'"));
	ASSERT_TRUE(startswith(w[6], "t.repo:12: baseurl 'ftp://h/c' is not an http"));
	ASSERT_STREQ(w[7], "t.repo:11: repository 'c' has no valid baseurl=, ignoring");
	ASSERT_STREQ(w[8], "t.repo:13: expected '[id]', ignoring this section");
	ASSERT_STREQ(w[9],
		     "t.repo:14: repository 'a' defined again in the same file, ignoring");
	ASSERT_TRUE(startswith(w[10],
			       "t.repo:17: baseurl 'http://h/$basearch' uses variables"));
	ASSERT_STREQ(w[11], "t.repo:16: repository 'e' has no valid baseurl=, ignoring");
	ASSERT_STREQ(w[12],
		     "t.repo:19: only the first baseurl is used, ignoring the others");
	ASSERT_STREQ(w[13],
		     "t.repo:20: only the first baseurl is used, ignoring 'http://h/f3'");
	ASSERT_EQ(strv_length(w), 14);
	repo_configs_free(c, n);
}

TEST(repo_config_parse_nul_and_no_newline)
{
	static const char text[] = "[a]\nbase\0url=x\nbaseurl=https://h/a";
	_cleanup_strv_free_ char **w = NULL;
	RepoConfig *c = NULL;
	size_t n = 0;

	ASSERT_OK(repo_config_parse("t.repo", text, sizeof(text) - 1, &c, &n, &w));
	ASSERT_EQ(n, 1);
	ASSERT_STREQ(c[0].baseurl, "https://h/a");
	ASSERT_STREQ(w[0], "t.repo:2: NUL byte in line, ignoring the line");
	repo_configs_free(c, n);
}

TEST(repo_configs_load_add_remove)
{
	char root[] = "/tmp/test-repo.XXXXXX";
	_cleanup_strv_free_ char **w = NULL;
	_cleanup_free_ char *d = NULL, *f1 = NULL, *f2 = NULL, *path = NULL;
	RepoConfig add = { .id = (char *)"added",
			   .baseurl = (char *)"http://h/added",
			   .enabled = true,
			   .priority = 5 };
	RepoConfig *c = NULL;
	size_t n = 0;

	ASSERT_TRUE(mkdtemp(root));
	d = path_join(root, "etc/kmodd/repos.d");
	ASSERT_OK(mkdir_p(d, 0755));
	f1 = path_join(d, "a.repo");
	f2 = path_join(d, "b.repo");
	ASSERT_OK(write_file_atomic(f1, "[one]\nbaseurl=http://h/1\n", 24, 0644));
	ASSERT_OK(write_file_atomic(
		f2, "[one]\nbaseurl=http://h/dup\n[two]\nbaseurl=http://h/2\n", 51, 0644));
	ASSERT_OK(repo_configs_load(root, &c, &n, &w));
	ASSERT_EQ(n, 2);
	ASSERT_STREQ(c[0].baseurl, "http://h/1");
	ASSERT_STREQ(c[1].id, "two");
	ASSERT_EQ(strv_length(w), 1);
	ASSERT_TRUE(strstr(w[0], "already defined in"));
	repo_configs_free(c, n);

	ASSERT_OK(repo_config_add(root, &add, &path));
	ASSERT_ERROR(repo_config_add(root, &add, NULL), EEXIST);
	add.id = (char *)"two";
	ASSERT_ERROR(repo_config_add(root, &add, NULL), EEXIST);
	add.id = (char *)"../evil";
	ASSERT_ERROR(repo_config_add(root, &add, NULL), EINVAL);

	ASSERT_OK(repo_config_remove(root, "two", NULL));
	ASSERT_OK(repo_config_remove(root, "added", NULL));
	ASSERT_ERROR(repo_config_remove(root, "added", NULL), ENOENT);
	ASSERT_TRUE(access(path, F_OK) < 0);
	c = NULL;
	ASSERT_OK(repo_configs_load(root, &c, &n, NULL));
	ASSERT_EQ(n, 1); /* b.repo's duplicate 'one' is still ignored */
	ASSERT_STREQ(c[0].baseurl, "http://h/1");
	repo_configs_free(c, n);

	ASSERT_OK(unlink(f1));
	ASSERT_OK(unlink(f2));
	ASSERT_OK(rmdir(d));
	*strrchr(d, '/') = 0;
	ASSERT_OK(rmdir(d));
	*strrchr(d, '/') = 0;
	ASSERT_OK(rmdir(d));
	ASSERT_OK(rmdir(root));
}

TEST(repomd_parse_real)
{
	static const char text[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" "
		"xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n"
		"  <revision>1792187172</revision>\n"
		"  <!-- a comment <data> -->\n"
		"  <data type=\"primary\">\n"
		"    <checksum type=\"sha256\">D29FD414E0D66CEEBF2935D0F135EB1B9D9CD02BC5720F88A42EFD43CD6E368B</checksum>\n"
		"    <open-checksum type=\"sha256\">61d96ef46156bfc957c71946cc93b259fc196bca06ab648e22b12e4bf5cf5ea6</open-checksum>\n"
		"    <location href=\"repodata/p&amp;q-primary.xml.gz\"/>\n"
		"    <timestamp>1792187172</timestamp>\n"
		"    <size>2440788</size>\n"
		"    <open-size>27344034</open-size>\n"
		"  </data>\n"
		"  <data type='filelists'>\n"
		"    <location href='repodata/f.xml.gz'/>\n"
		"    <timestamp>1792187999</timestamp>\n"
		"  </data>\n"
		"  <tags><content>x</content></tags>\n"
		"</repomd>\n";
	_cleanup_(repomd_freep) Repomd *m = NULL;
	const RepomdData *d;

	ASSERT_OK(repomd_parse(text, sizeof(text) - 1, &m));
	ASSERT_STREQ(m->revision, "1792187172");
	ASSERT_EQ(m->n_data, 2);
	ASSERT_EQ(m->timestamp, 1792187999);
	d = repomd_find(m, "primary");
	ASSERT_TRUE(d);
	ASSERT_STREQ(d->checksum_type, "sha256");
	ASSERT_STREQ(d->checksum,
		     "d29fd414e0d66ceebf2935d0f135eb1b9d9cd02bc5720f88a42efd43cd6e368b");
	ASSERT_STREQ(d->location, "repodata/p&q-primary.xml.gz");
	ASSERT_EQ(d->size, 2440788);
	ASSERT_EQ(d->open_size, 27344034);
	ASSERT_EQ(d->timestamp, 1792187172);
	ASSERT_TRUE(!repomd_find(m, "other"));
}

TEST(repomd_parse_bad)
{
	static const char *const bad[] = {
		"",
		"not xml",
		"<other/>",
		"<repomd>",
		"<repomd></other>",
		"<repomd><data type=\"primary\"><timestamp>12x</timestamp></data></repomd>",
		"<repomd><data><timestamp>1</timestamp></data></repomd>",
		"<repomd><data type=\"p\"><checksum type=\"sha256\">abc</checksum></data></repomd>",
		"<!DOCTYPE x [<!ENTITY a \"b\">]><repomd/>",
		"<repomd><data type=\"p&unknown;\"/></repomd>",
		"<repomd/><repomd/>",
		"<repomd><data type=\"p\"><timestamp>99999999999999999999999</timestamp></data></repomd>",
	};

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		Repomd *m = NULL;
		int r = repomd_parse(bad[i], strlen(bad[i]), &m);

		if (r >= 0)
			TEST_FAIL("accepted: %s", bad[i]);
		ASSERT_TRUE(!m);
	}
}

TEST(repo_location_safe)
{
	ASSERT_TRUE(repo_location_safe("x86_64/e1000-kmp-amd64-6.1.0-54.x86_64.rpm"));
	ASSERT_TRUE(repo_location_safe("repodata/abc-primary.xml.gz"));
	ASSERT_TRUE(!repo_location_safe(NULL));
	ASSERT_TRUE(!repo_location_safe(""));
	ASSERT_TRUE(!repo_location_safe("/etc/passwd"));
	ASSERT_TRUE(!repo_location_safe("../x.rpm"));
	ASSERT_TRUE(!repo_location_safe("a/../../x.rpm"));
	ASSERT_TRUE(!repo_location_safe("a/./x.rpm"));
	ASSERT_TRUE(!repo_location_safe("a//x.rpm"));
	ASSERT_TRUE(!repo_location_safe("file:///etc/passwd"));
	ASSERT_TRUE(!repo_location_safe("a\\..\\x"));
	ASSERT_TRUE(!repo_location_safe("x.rpm?y"));
	ASSERT_TRUE(!repo_location_safe("a%2e%2e/x"));
	ASSERT_TRUE(!repo_location_safe("a b.rpm"));
}

TEST(repo_id_and_url_valid)
{
	ASSERT_TRUE(repo_id_valid("kmp-updates_1.2"));
	ASSERT_TRUE(!repo_id_valid(""));
	ASSERT_TRUE(!repo_id_valid(".."));
	ASSERT_TRUE(!repo_id_valid("a/b"));
	ASSERT_TRUE(!repo_id_valid("-x"));
	ASSERT_TRUE(repo_url_valid("https://h/x"));
	ASSERT_TRUE(repo_url_valid("file:///x"));
	ASSERT_TRUE(!repo_url_valid("ftp://h/x"));
	ASSERT_TRUE(!repo_url_valid("http://"));
	ASSERT_TRUE(!repo_url_valid("http://h/a b"));
}

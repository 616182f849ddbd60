/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/stat.h>

#include "fileio.h"
#include "policy.h"
#include "strv.h"
#include "tests.h"

static int parse(const char *text, PolicySet **s, char ***w)
{
	return policy_set_parse("/x/netfilter.set", text, strlen(text), s, w);
}

TEST(policy_set_parse_basic)
{
	_cleanup_strv_free_ char **w = NULL;
	_cleanup_policy_set_free_ PolicySet *s = NULL;

	ASSERT_OK(parse(
		"# comment\n"
		"[Set]\n"
		"Description = Packet filtering \n"
		"Modules=nf_tables nft_*\tnf-conntrack*\n"
		"Modules=xt_*\n"
		"Paths=kernel/net/netfilter/ kernel/net/ipv4/netfilter/ip_tables.ko\n",
		&s, &w));
	ASSERT_EQ(strv_length(w), 0);
	ASSERT_STREQ(s->name, "netfilter");
	ASSERT_STREQ(s->description, "Packet filtering");
	ASSERT_EQ(strv_length(s->modules), 4);
	ASSERT_STREQ(s->modules[2], "nf_conntrack*");
	ASSERT_EQ(strv_length(s->paths), 2);

	ASSERT_TRUE(policy_set_matches(s, "nft_ct", NULL));
	ASSERT_TRUE(policy_set_matches(s, "nf-conntrack-ftp", NULL));
	ASSERT_TRUE(!policy_set_matches(s, "e1000", NULL));
	ASSERT_TRUE(policy_set_matches(s, NULL, "kernel/net/netfilter/ipvs/ip_vs.ko"));
	ASSERT_TRUE(policy_set_matches(s, NULL, "updates/net/netfilter/xt_foo.ko"));
	ASSERT_TRUE(policy_set_matches(s, NULL, "kernel/net/ipv4/netfilter/ip_tables.ko"));
	ASSERT_TRUE(
		!policy_set_matches(s, NULL, "kernel/net/ipv4/netfilter/iptable_nat.ko"));
	ASSERT_TRUE(!policy_set_matches(s, NULL, "kernel/net/netfilterx/a.ko"));
}

TEST(policy_set_parse_bad_lines)
{
	_cleanup_strv_free_ char **w = NULL;
	_cleanup_policy_set_free_ PolicySet *s = NULL;

	ASSERT_OK(parse("Name=outside\n"
			"[Set]\n"
			"Name=bad name\n"
			"Modules=ok ../x $(rm)\n"
			"Paths=/etc/ ../../x kernel/../x kernel/ok/\n"
			"noequals\n"
			"Bogus=1\n"
			"[Other]\n"
			"Modules=late\n",
			&s, &w));
	ASSERT_STREQ(s->name, "netfilter");
	ASSERT_EQ(strv_length(s->modules), 1);
	ASSERT_STREQ(s->modules[0], "ok");
	ASSERT_EQ(strv_length(s->paths), 1);
	ASSERT_STREQ(s->paths[0], "kernel/ok/");
	ASSERT_EQ(strv_length(w), 11);
	ASSERT_TRUE(startswith(w[0], "/x/netfilter.set:1: "));
	ASSERT_TRUE(startswith(w[1], "/x/netfilter.set:3: invalid Name="));
}

TEST(policy_set_parse_not_a_set)
{
	_cleanup_strv_free_ char **w = NULL;
	PolicySet *s = NULL;

	ASSERT_ERROR(parse("", &s, &w), EINVAL);
	ASSERT_ERROR(parse("[Set]\nName=x\n", &s, &w), EINVAL);
	/* an emptied list is still a set (nothing in it) */
	ASSERT_OK(parse("[Set]\nModules=a\nModules=\n", &s, &w));
	ASSERT_EQ(strv_length(s->modules), 0);
	policy_set_free(s);
}

TEST(policy_set_load_override)
{
	char dir[] = "/tmp/test-policy.XXXXXX";
	_cleanup_policy_set_free_ PolicySet *s = NULL;
	_cleanup_strv_free_ char **w = NULL;
	PolicySet **l = NULL;
	size_t n = 0;
	char *p;

	ASSERT_TRUE(mkdtemp(dir));
	ASSERT_TRUE(asprintf(&p, "%s/usr/lib/kmodd/policies/sets", dir) > 0);
	ASSERT_OK(mkdir_p(p, 0755));
	free(p);
	ASSERT_TRUE(asprintf(&p, "%s/etc/kmodd/policies", dir) > 0);
	ASSERT_OK(mkdir_p(p, 0755));
	free(p);
	ASSERT_TRUE(asprintf(&p, "%s/usr/lib/kmodd/policies/sets/kvm.set", dir) > 0);
	ASSERT_OK(write_file_atomic(p, "[Set]\nModules=kvm\n", 17, 0644));
	free(p);
	ASSERT_TRUE(asprintf(&p, "%s/usr/lib/kmodd/policies/sets/nfs.set", dir) > 0);
	ASSERT_OK(write_file_atomic(p, "[Set]\nModules=nfs\n", 17, 0644));
	free(p);
	ASSERT_TRUE(asprintf(&p, "%s/etc/kmodd/policies/kvm.set", dir) > 0);
	ASSERT_OK(write_file_atomic(p, "[Set]\nModules=kvm_amd\n", 21, 0644));
	free(p);

	ASSERT_OK(policy_set_load(dir, "kvm", &s, &w));
	ASSERT_STREQ(s->modules[0], "kvm_amd");
	ASSERT_ERROR(policy_set_load(dir, "none", &s, &w), ENOENT);
	ASSERT_ERROR(policy_set_load(dir, "../x", &s, &w), EINVAL);
	ASSERT_OK(policy_sets_load(dir, &l, &n, &w));
	ASSERT_EQ(n, 2);
	ASSERT_STREQ(l[0]->name, "kvm");
	ASSERT_STREQ(l[0]->modules[0], "kvm_amd");
	ASSERT_STREQ(l[1]->name, "nfs");
	policy_sets_free(l, n);

	ASSERT_TRUE(asprintf(&p, "rm -rf '%s'", dir) > 0);
	ASSERT_EQ(system(p), 0);
	free(p);
}

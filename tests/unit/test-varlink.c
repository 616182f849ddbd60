/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Varlink framing and parsing, kmodd.conf, the watchdog policy. */
#include <sys/stat.h>

#include "blacklist.h"
#include "daemon-config.h"
#include "fileio.h"
#include "strv.h"
#include "tests.h"
#include "varlink.h"

TEST(varlink_buffer_framing)
{
	VarlinkBuffer b = { .max = 16 };
	char *m = NULL;
	size_t n;

	ASSERT_OK(varlink_buffer_feed(&b, "{\"a\":1}\0{\"b\"", 12));
	ASSERT_EQ(varlink_buffer_next(&b, &m, &n), 1);
	ASSERT_STREQ(m, "{\"a\":1}");
	ASSERT_EQ(n, 7);
	free(m);
	ASSERT_EQ(varlink_buffer_next(&b, &m, &n), 0);
	ASSERT_OK(varlink_buffer_feed(&b, ":2}\0", 4));
	ASSERT_EQ(varlink_buffer_next(&b, &m, &n), 1);
	ASSERT_STREQ(m, "{\"b\":2}");
	free(m);
	/* more than max without a NUL: the stream cannot be resynchronised */
	ASSERT_OK(varlink_buffer_feed(&b, "0123456789abcdefXYZ", 19));
	ASSERT_ERROR(varlink_buffer_next(&b, &m, &n), E2BIG);
	varlink_buffer_done(&b);
}

TEST(varlink_call_parse)
{
	VarlinkCall c = {};
	const char *why = NULL;
	const char *s;
	static const char call[] = "{\"method\":\"io.kmodd.Manager.HandleModalias\","
				   "\"parameters\":{\"modalias\":\"pci:v1\"},\"oneway\":true}";

	ASSERT_OK(varlink_call_parse(call, sizeof(call) - 1, &c, &why));
	ASSERT_STREQ(c.method, "io.kmodd.Manager.HandleModalias");
	ASSERT_TRUE(c.oneway && !c.more);
	ASSERT_OK(varlink_param_string(c.parameters, "modalias", &s));
	ASSERT_STREQ(s, "pci:v1");
	ASSERT_ERROR(varlink_param_string(c.parameters, "devpath", &s), ENOENT);
	varlink_call_done(&c);

	ASSERT_OK(varlink_call_parse("{\"method\":\"io.kmodd.Manager.Status\"}", 36, &c, &why));
	ASSERT_TRUE(json_object_object_length(c.parameters) == 0);
	varlink_call_done(&c);

#define BAD(text) ASSERT_ERROR(varlink_call_parse(text, strlen(text), &c, &why), EBADMSG)
	BAD("");
	BAD("[]");
	BAD("{}");
	BAD("{\"method\":1}");
	BAD("{\"method\":\"Status\"}");
	BAD("{\"method\":\"io.kmodd.Manager.status\"}");
	BAD("{\"method\":\"io..Manager.Status\"}");
	BAD("{\"method\":\"io.kmodd.Manager.Status\",\"more\":true,\"oneway\":true}");
	BAD("{\"method\":\"io.kmodd.Manager.Status\",\"upgrade\":true}");
	BAD("{\"method\":\"io.kmodd.Manager.Status\"} x");
	BAD("{\"method\":\"io.kmodd.Manager.Status\",\"parameters\":[]}");
	BAD("{\"method\":\"io.kmodd.Manager.St\\u0000atus\"}");
	BAD("{\"method\":\"io.kmodd.Manager.Status\",\"parameters\":{\"a\":\"\xff\"}}");
	BAD("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
#undef BAD
}

TEST(varlink_reply_roundtrip)
{
	json_object *p = json_object_new_object();
	VarlinkReply r = {};
	char *s;

	json_object_object_add(p, "state", json_object_new_string("idle"));
	s = varlink_format_reply(p, true);
	ASSERT_OK(varlink_reply_parse(s, strlen(s), &r, NULL));
	ASSERT_TRUE(r.continues && !r.error);
	ASSERT_STREQ(json_object_get_string(json_object_object_get(r.parameters, "state")), "idle");
	varlink_reply_done(&r);
	free(s);
	s = varlink_format_error(VARLINK_ERROR_PERMISSION_DENIED, NULL);
	ASSERT_OK(varlink_reply_parse(s, strlen(s), &r, NULL));
	ASSERT_STREQ(r.error, "org.varlink.service.PermissionDenied");
	varlink_reply_done(&r);
	free(s);
	json_object_put(p);
}

TEST(daemon_config_parse)
{
	static const char text[] = "# comment\n"
				   "[Daemon]\n"
				   "AutoInstall=notify-only\n"
				   "AllowedBuses=pci usb\n"
				   "AllowedVendors=pci:8086 usb:0bda\n"
				   "QueueSize=0\n"
				   "QueueSize=12\n"
				   "Bogus=1\n"
				   "DeniedModules=nouveau nvidia*\n"
				   "[Other]\n"
				   "no equals\n";
	_cleanup_strv_free_ char **w = NULL;
	DaemonConfig c;
	char buf[128];

	daemon_config_init(&c);
	ASSERT_OK(daemon_config_parse(&c, "t.conf", text, sizeof(text) - 1, &w));
	ASSERT_EQ(c.auto_install, AUTO_INSTALL_NOTIFY_ONLY);
	ASSERT_EQ(c.queue_size, 12);
	ASSERT_EQ(strv_length(w), 4);
	ASSERT_STREQ(w[0], "t.conf:6: invalid value for QueueSize=: '0', ignoring");
	ASSERT_STREQ(w[1], "t.conf:8: unknown key Bogus= in [Daemon], ignoring");
	ASSERT_TRUE(!daemon_config_check_modalias(&c, "pci:v00008086d0000100Esv0sd0bc0sc0i0", buf,
						  sizeof(buf)));
	ASSERT_TRUE(!daemon_config_check_modalias(&c, "usb:v0BDAp8153d3000", buf, sizeof(buf)));
	ASSERT_TRUE(daemon_config_check_modalias(&c, "pci:v000010ECd00008168sv0", buf, sizeof(buf)));
	ASSERT_TRUE(daemon_config_check_modalias(&c, "virtio:d00000001v00001AF4", buf, sizeof(buf)));
	ASSERT_TRUE(daemon_config_module_denied(&c, "nvidia_drm"));
	ASSERT_TRUE(!daemon_config_module_denied(&c, "e1000"));
	daemon_config_done(&c);
}

TEST(watchdog_list_from_tree)
{
	char dir[] = "/tmp/test-blacklist.XXXXXX";
	_cleanup_strv_free_ char **mods = NULL, **w = NULL;
	_cleanup_free_ char *text = NULL, *conf = NULL;
	BlacklistPolicy p = {};
	const char *order = "kernel/drivers/watchdog/i6300esb.ko\n"
			    "kernel/drivers/char/ipmi/ipmi_watchdog.ko\n"
			    "kernel/drivers/net/ethernet/intel/e1000/e1000.ko\n";
	char *path;

	ASSERT_TRUE(mkdtemp(dir));
	path = path_join(dir, "lib/modules/6.1.0-1-amd64/updates/drivers/watchdog/vendor");
	ASSERT_OK(mkdir_p(path, 0755));
	free(path);
	path = path_join(dir, "lib/modules/6.1.0-1-amd64/updates/drivers/watchdog/vendor/acme-dog.ko.zst");
	ASSERT_OK(write_file_atomic(path, "", 0, 0644));
	free(path);
	path = path_join(dir, "lib/modules/6.1.0-1-amd64/modules.order");
	ASSERT_OK(write_file_atomic(path, order, strlen(order), 0644));
	free(path);

	ASSERT_OK(blacklist_policy_load(dir, &p, &w));
	ASSERT_OK(blacklist_watchdog_modules(dir, "6.1.0-1-amd64", &p, &mods));
	ASSERT_EQ(strv_length(mods), 3);
	ASSERT_STREQ(mods[0], "acme_dog");
	ASSERT_STREQ(mods[1], "i6300esb");
	ASSERT_STREQ(mods[2], "ipmi_watchdog");
	ASSERT_TRUE(blacklist_contains(mods, &p, "acme-dog"));
	ASSERT_TRUE(!blacklist_contains(mods, &p, "e1000"));

	ASSERT_OK(blacklist_policy_set_allow(dir, &p, "i6300esb", NULL));
	blacklist_policy_done(&p);
	ASSERT_OK(blacklist_policy_load(dir, &p, &w));
	ASSERT_STREQ(p.allow, "i6300esb");
	ASSERT_TRUE(!blacklist_contains(mods, &p, "i6300esb"));
	ASSERT_OK(blacklist_write(dir, "etc/modprobe.d", &p, NULL));
	conf = path_join(dir, "etc/modprobe.d/kmodd-watchdog.conf");
	ASSERT_OK(read_full_file(conf, 0, &text, NULL));
	ASSERT_TRUE(strstr(text, "blacklist acme_dog\n"));
	ASSERT_TRUE(strstr(text, "blacklist ipmi_watchdog\n"));
	ASSERT_TRUE(!strstr(text, "blacklist i6300esb\n"));
	ASSERT_ERROR(blacklist_policy_set_allow(dir, &p, "a b", NULL), EINVAL);
	blacklist_policy_done(&p);
	{
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		ASSERT_EQ(system(cmd), 0);
	}
}

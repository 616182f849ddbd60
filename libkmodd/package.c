/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fileio.h"
#include "package.h"
#include "strv.h"

static const char *const reason_table[_INSTALL_REASON_MAX] = {
	[INSTALL_REASON_USER] = "user",
	[INSTALL_REASON_HOTPLUG] = "hotplug",
	[INSTALL_REASON_SET] = "set",
	[INSTALL_REASON_DEPENDENCY] = "dependency",
};

const char *install_reason_to_string(InstallReason r)
{
	if (r < 0 || r >= _INSTALL_REASON_MAX)
		return NULL;
	return reason_table[r];
}

InstallReason install_reason_from_string(const char *s)
{
	for (size_t i = 0; i < _INSTALL_REASON_MAX; i++)
		if (s && streq(s, reason_table[i]))
			return (InstallReason)i;
	return _INSTALL_REASON_INVALID;
}

void package_ref_done(PackageRef *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->evr);
	free(p->arch);
	free(p->repo_id);
	free(p->url);
	free(p->checksum);
	strv_free(p->provides);
	strv_free(p->requires);
	strv_free(p->supplements);
	strv_free(p->recommends);
	free(p->device);
	free(p->requested_by);
	*p = (PackageRef){};
}

PackageRef *package_ref_free(PackageRef *p)
{
	package_ref_done(p);
	free(p);
	return NULL;
}

static int dup_str(char **to, const char *from)
{
	if (!from) {
		*to = NULL;
		return 0;
	}
	*to = strdup(from);
	return *to ? 0 : -ENOMEM;
}

static int dup_strv(char ***to, char *const *from)
{
	*to = NULL;
	STRV_FOREACH(s, from)
		if (strv_extend(to, *s) < 0)
			return -ENOMEM;
	return 0;
}

int package_ref_copy(const PackageRef *from, PackageRef *to)
{
	PackageRef c = { .reason = from->reason, .download_size = from->download_size };

	if (dup_str(&c.name, from->name) < 0 || dup_str(&c.evr, from->evr) < 0 ||
	    dup_str(&c.arch, from->arch) < 0 || dup_str(&c.repo_id, from->repo_id) < 0 ||
	    dup_str(&c.url, from->url) < 0 || dup_str(&c.checksum, from->checksum) < 0 ||
	    dup_strv(&c.provides, from->provides) < 0 || dup_strv(&c.requires, from->requires) < 0 ||
	    dup_strv(&c.supplements, from->supplements) < 0 ||
	    dup_strv(&c.recommends, from->recommends) < 0 || dup_str(&c.device, from->device) < 0 ||
	    dup_str(&c.requested_by, from->requested_by) < 0) {
		package_ref_done(&c);
		return -ENOMEM;
	}
	*to = c;
	return 0;
}

char *package_ref_nevra(const PackageRef *p)
{
	char *s;

	if (asprintf(&s, "%s-%s.%s", p->name, strempty(p->evr), strempty(p->arch)) < 0)
		return NULL;
	return s;
}

char *kmodd_path_repos_d(const char *root)
{
	return path_join(root, "etc/kmodd/repos.d");
}

char *kmodd_path_policies(const char *root, bool etc)
{
	return path_join(root, etc ? "etc/kmodd/policies" : "usr/lib/kmodd/policies");
}

char *kmodd_path_state(const char *root)
{
	return path_join(root, "var/lib/kmodd");
}

char *kmodd_path_cache(const char *root)
{
	return path_join(root, "var/cache/kmodd");
}

char *kmodd_path_run(const char *root)
{
	return path_join(root, "run/kmodd");
}

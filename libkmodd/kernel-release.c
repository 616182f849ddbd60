/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which kernel a command means when none is named. Apart from modtree.c so that the
 * depmod core (kmodctl's front binary) has it without modtree's Module.symvers reader and
 * its zlib. */
#include <dirent.h>
#include <sys/utsname.h>

#include "fileio.h"
#include "kernel-release.h"
#include "macros.h"

int kernel_release_default(const char *root, char **ret)
{
	_cleanup_free_ char *dir = NULL, *found = NULL;
	DIR *d;
	struct dirent *de;

	if (streq(root, "/")) {
		struct utsname u;

		if (uname(&u) < 0)
			return negative_errno();
		*ret = strdup(u.release);
		return *ret ? 0 : -ENOMEM;
	}

	dir = path_join(root, "lib/modules");
	if (!dir)
		return -ENOMEM;
	d = opendir(dir);
	if (!d)
		return negative_errno();
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (found) {
			closedir(d);
			return -ENOTUNIQ;
		}
		found = strdup(de->d_name);
		if (!found) {
			closedir(d);
			return -ENOMEM;
		}
	}
	closedir(d);
	if (!found)
		return -ENOENT;
	*ret = TAKE_PTR(found);
	return 0;
}

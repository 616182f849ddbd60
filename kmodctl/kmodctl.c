/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>

#include "kmodctl.h"
#include "log.h"
#include "verbs.h"

int open_tree(ModTreeFlags flags, ModTree **ret)
{
	_cleanup_free_ char *kver = NULL, *bad = NULL;
	int r;

	if (!arg_kernel) {
		r = kernel_release_default(arg_root, &kver);
		if (r == -ENOTUNIQ)
			return log_error_errno(r, "Several kernels under %s/lib/modules; choose one with --kernel.",
					       arg_root);
		if (r < 0)
			return log_error_errno(r, "No kernel module tree under %s/lib/modules: %m; "
						  "install a kernel or pass --root/--kernel.",
					       streq(arg_root, "/") ? "" : arg_root);
	}

	r = modtree_open(arg_root, arg_kernel ?: kver, flags, ret, &bad);
	if (r < 0 && bad && endswith(bad, "modules.dep"))
		return log_error_errno(r, "%s: cannot read: %m; run 'depmod -b %s %s' first.", bad,
				       arg_root, arg_kernel ?: kver);
	if (r < 0 && bad)
		return log_error_errno(r, "Kernel module tree %s: %m; install the kernel or pass the "
					  "right --root/--kernel.",
				       bad);
	if (r < 0)
		return log_error_errno(r, "Failed to open the module tree: %m");
	return 0;
}

int load_symvers(ModTree *t)
{
	unsigned line = 0;
	int r;

	r = modtree_load_symvers(t, arg_symvers, &line);
	if (r == -EBADMSG && line > 0)
		return log_error_errno(r, "%s:%u: malformed Module.symvers line; expected "
					  "'0xCRC<TAB>SYMBOL<TAB>MODULE<TAB>EXPORT_TYPE'.",
				       t->error_path, line);
	if (r == -EBADMSG)
		return log_error_errno(r, "%s: not a Module.symvers file (binary data).",
				       t->error_path);
	if (r < 0)
		return log_error_errno(r, "%s: cannot read Module.symvers: %m; fix the file or pass "
					  "--symvers.",
				       strna(t->error_path));
	return 0;
}

int log_tree_error(ModTree *t, int r)
{
	if (r == -ENOEXEC)
		return log_error_errno(r, "%s: not a valid kernel module (truncated, or not ELF); "
					  "remove or replace the file.",
				       strna(t->error_path));
	return log_error_errno(r, "%s: %m", strna(t->error_path));
}

int main(int argc, char *argv[])
{
#define X(name, fn, summary) { name, fn, summary },
	static const Verb verbs[] = { KMODCTL_VERBS(X) };
#undef X

	return kmodctl_run(argc, argv, verbs, ELEMENTSOF(verbs), NULL);
}

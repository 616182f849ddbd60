/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Every verb: name, function, summary. kmodctl runs the light ones itself and hands the
 * others to kmodctl-full (see lean.c). */
#define KMODCTL_VERBS(X) \
	X("modules", verb_modules, "list the modules of a kernel's tree") \
	X("info", verb_info, "show one module: modinfo, exported and required symbols") \
	X("depmod", verb_depmod, "update the module indexes incrementally, byte-identical to depmod") \
	X("repo", verb_repo, "add, remove, list and refresh KMP repositories") \
	X("remove", verb_remove, "remove installed KMPs and the packages that require them") \
	X("list", verb_list, "list installed KMPs (--installed) or what repositories offer") \
	X("history", verb_history, "show the transactions: installs, removals, recoveries") \
	X("why", verb_why, "say why a KMP is installed and what requires it") \
	X("verify", verb_verify, "check installed files, pending transactions and indexes") \
	X("recover", verb_recover, "finish or roll back an interrupted transaction") \
	X("audit", verb_audit, "tell whether each installed module would load on a kernel (KABI), and more") \
	X("kernel", verb_kernel, "add or remove a kernel: weak-updates links for compatible KMP modules") \
	X("search", verb_search, "search the repositories' packages by name, module or summary") \
	X("what-provides", verb_what_provides, "which packages provide a capability or serve a modalias") \
	X("install", verb_install, "install the KMPs of a module, package or device modalias") \
	X("ensure", verb_ensure, "install every KMP of a set (policies), e.g. netfilter") \
	X("scan", verb_scan, "install what serves every device without a driver under /sys") \
	X("status", verb_status, "show the state of the running kmodd") \
	X("daemon", verb_daemon, "ask the running kmodd: status, scan, refresh, monitor, handle") \
	X("watchdog", verb_watchdog, "list the watchdog blacklist, allow or deny one watchdog")

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <json-c/json.h>
#include <stdarg.h>
#include <time.h>

#include "audit.h"
#include "fileio.h"
#include "kmodctl.h"
#include "log.h"
#include "modtree-json.h"
#include "strv.h"

static bool arg_all_kernels = false;
static bool arg_all_modules = false;
static const char *arg_prometheus = NULL;

enum {
	ARG_ALL_KERNELS = ARG_VERB_BASE,
	ARG_PROMETHEUS,
	ARG_ALL,
};

static void help(void)
{
	printf("Usage: kmodctl [--root DIR] audit [--kernel KVER | --all-kernels] [--all]\n"
	       "                                [--json | --prometheus FILE]\n\n"
	       "For a kernel (the default one, KVER, or every kernel under the root) and every\n"
	       "module installed for it — its own tree, its weak-updates/ links, and the modules\n"
	       "installed for other kernels of its flavour — tell whether the kernel would load\n"
	       "it (the modversions check: every __versions symbol exported with the same CRC),\n"
	       "its owning package, signature, in-tree or not, supported: flag, taint and\n"
	       "blacklisting.\n\n"
	       "  --all-kernels      audit every kernel under DIR/lib/modules\n"
	       "  --all              list the kernel's own in-tree modules too (table output)\n"
	       "  --json             the report as JSON (schema in README.md)\n"
	       "  --prometheus FILE  write node_exporter textfile metrics to FILE (atomically)\n\n"
	       "Exit status: 0 when clean (every module ok, no dangling link), 6 when not,\n"
	       "1 on failure.\n");
}

typedef struct Counts {
	size_t modules, verdict[_KABI_VERDICT_MAX], shadowed, unowned, unsigned_,
		out_of_tree, blacklisted, loaded, failed;
} Counts;

static void count(const AuditKernel *a, Counts *c)
{
	*c = (Counts){};
	for (size_t i = 0; i < a->n_modules; i++) {
		const AuditModule *m = &a->modules[i];

		c->modules++;
		if (m->kabi.shadowed_by)
			c->shadowed++;
		else
			c->verdict[m->kabi.verdict]++;
		if (audit_module_failed(m))
			c->failed++;
		if (!m->package)
			c->unowned++;
		if (!m->module->signer)
			c->unsigned_++;
		if (!m->module->intree)
			c->out_of_tree++;
		if (m->blacklisted)
			c->blacklisted++;
		if (m->loaded)
			c->loaded++;
	}
}

static bool kernel_clean(const AuditKernel *a)
{
	Counts c;

	count(a, &c);
	return c.failed == 0 && !(a->dangling && a->dangling[0]);
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *jcrc(uint32_t crc)
{
	char buf[19];

	crc_format(crc, buf);
	return json_object_new_string(buf);
}

static json_object *problem_json(const KabiProblem *p)
{
	json_object *o = json_object_new_object();
	_cleanup_free_ char *msg = kabi_problem_describe(p);

	json_object_object_add(o, "kind", jstr(kabi_problem_kind_to_string(p->kind)));
	json_object_object_add(o, "symbol", jstr(p->symbol));
	if (p->kind == KABI_PROBLEM_VERMAGIC) {
		json_object_object_add(o, "module_vermagic", jstr(p->want_text));
		json_object_object_add(o, "kernel_vermagic", jstr(p->have_text));
	} else if (p->symbol) {
		json_object_object_add(o, "module_crc", jcrc(p->want));
		json_object_object_add(o, "kernel_crc",
				       p->has_have ? jcrc(p->have) : NULL);
		json_object_object_add(o, "provider", jstr(p->provider));
		if (p->kind == KABI_PROBLEM_BREAKS)
			json_object_object_add(o, "user", jstr(p->user));
	}
	json_object_object_add(o, "message", jstr(msg));
	return o;
}

static json_object *module_json(const AuditModule *m)
{
	json_object *o = json_object_new_object(), *probs = json_object_new_array(),
		    *sig = NULL;
	const Module *mod = m->module;

	json_object_object_add(o, "name", jstr(m->name));
	json_object_object_add(o, "path", jstr(m->path));
	json_object_object_add(o, "file", jstr(m->file));
	json_object_object_add(o, "source", jstr(audit_source_to_string(m->source)));
	json_object_object_add(o, "built_for", jstr(m->origin_kver));
	json_object_object_add(o, "package", jstr(m->package));
	json_object_object_add(o, "package_kernel", jstr(m->package_kver));
	json_object_object_add(o, "verdict",
			       jstr(kabi_verdict_to_string(m->kabi.verdict)));
	json_object_object_add(o, "shadowed_by", jstr(m->kabi.shadowed_by));
	json_object_object_add(o, "round", json_object_new_int((int)m->kabi.round));
	for (size_t i = 0; i < m->kabi.n_problems; i++)
		json_object_array_add(probs, problem_json(&m->kabi.problems[i]));
	json_object_object_add(o, "problems", probs);
	json_object_object_add(o, "vermagic", jstr(mod->vermagic));
	json_object_object_add(o, "vermagic_differs",
			       json_object_new_boolean(m->kabi.vermagic_differs));
	if (mod->signer) {
		sig = json_object_new_object();
		json_object_object_add(sig, "signer", jstr(mod->signer));
		json_object_object_add(sig, "key", jstr(mod->sig_key));
		json_object_object_add(sig, "hash", jstr(mod->sig_hashalgo));
		json_object_object_add(sig, "kernel_key",
				       json_object_new_boolean(m->kernel_key));
	}
	json_object_object_add(o, "signature", sig);
	json_object_object_add(o, "intree", json_object_new_boolean(mod->intree));
	json_object_object_add(o, "supported", jstr(mod->supported));
	json_object_object_add(o, "loaded", json_object_new_boolean(m->loaded));
	json_object_object_add(o, "taint", jstr(m->taint));
	json_object_object_add(o, "blacklisted", json_object_new_boolean(m->blacklisted));
	return o;
}

static json_object *kernel_json(const AuditKernel *a)
{
	json_object *o = json_object_new_object(), *mods = json_object_new_array(),
		    *d = json_object_new_array(), *w = json_object_new_array(),
		    *s = json_object_new_object();
	Counts c;

	count(a, &c);
	json_object_object_add(o, "kernel", jstr(a->kver));
	json_object_object_add(o, "running", json_object_new_boolean(a->running));
	json_object_object_add(o, "symvers", jstr(a->symvers_path));
	json_object_object_add(o, "vermagic", jstr(a->vermagic));
	json_object_object_add(o, "tainted",
			       a->tainted >= 0 ? json_object_new_int64(a->tainted) : NULL);
	json_object_object_add(o, "database", json_object_new_boolean(a->database));
	for (size_t i = 0; i < a->n_modules; i++)
		json_object_array_add(mods, module_json(&a->modules[i]));
	json_object_object_add(o, "modules", mods);
	STRV_FOREACH(p, a->dangling)
		json_object_array_add(d, json_object_new_string(*p));
	json_object_object_add(o, "dangling_links", d);
	STRV_FOREACH(p, a->warnings)
		json_object_array_add(w, json_object_new_string(*p));
	json_object_object_add(o, "warnings", w);

	json_object_object_add(s, "modules", json_object_new_int64((int64_t)c.modules));
	for (KabiVerdict v = 0; v < _KABI_VERDICT_MAX; v++)
		json_object_object_add(s, kabi_verdict_to_string(v),
				       json_object_new_int64((int64_t)c.verdict[v]));
	json_object_object_add(s, "shadowed", json_object_new_int64((int64_t)c.shadowed));
	json_object_object_add(s, "failed", json_object_new_int64((int64_t)c.failed));
	json_object_object_add(s, "unowned", json_object_new_int64((int64_t)c.unowned));
	json_object_object_add(s, "unsigned", json_object_new_int64((int64_t)c.unsigned_));
	json_object_object_add(s, "out_of_tree",
			       json_object_new_int64((int64_t)c.out_of_tree));
	json_object_object_add(s, "blacklisted",
			       json_object_new_int64((int64_t)c.blacklisted));
	json_object_object_add(s, "loaded", json_object_new_int64((int64_t)c.loaded));
	json_object_object_add(s, "dangling_links",
			       json_object_new_int64((int64_t)strv_length(a->dangling)));
	json_object_object_add(o, "summary", s);
	json_object_object_add(o, "clean", json_object_new_boolean(kernel_clean(a)));
	return o;
}

static bool show_in_table(const AuditModule *m)
{
	if (arg_all_modules)
		return true;
	return m->source != AUDIT_SOURCE_TREE || !m->module->intree || m->package ||
	       audit_module_failed(m) || m->blacklisted || m->taint;
}

static void print_table(const AuditKernel *a)
{
	Counts c;
	size_t shown = 0;

	count(a, &c);
	printf("Kernel %s%s\n", a->kver, a->running ? " (running)" : "");
	printf("  Module.symvers: %s\n",
	       a->symvers_path ?: "none: symbols of vmlinux cannot be verified");
	if (a->tainted >= 0)
		printf("  tainted: %ld\n", a->tainted);
	for (size_t i = 0; i < a->n_modules; i++) {
		const AuditModule *m = &a->modules[i];
		const Module *mod = m->module;
		_cleanup_free_ char *sig = NULL;

		if (!show_in_table(m))
			continue;
		shown++;
		if (mod->signer &&
		    asprintf(&sig, "signed by %s (key %s%s)", mod->signer,
			     strna(mod->sig_key),
			     m->kernel_key ? "" : ", not this kernel's") < 0)
			sig = NULL;
		printf("  %s (%s%s%s): %s%s\n", m->name,
		       audit_source_to_string(m->source),
		       m->source != AUDIT_SOURCE_TREE ? ", built for " : "",
		       m->source != AUDIT_SOURCE_TREE ? m->origin_kver : "",
		       m->kabi.shadowed_by ? "shadowed by " :
					     kabi_verdict_to_string(m->kabi.verdict),
		       strempty(m->kabi.shadowed_by));
		printf("      %s; %s; %s; %s; supported: %s%s%s%s\n", m->path,
		       m->package ? m->package : "not owned by any package",
		       sig ? sig : "unsigned", mod->intree ? "in-tree" : "out-of-tree",
		       mod->supported ?: "-", m->loaded ? "; loaded" : "",
		       m->taint ? ", taint " : "", strempty(m->taint));
		if (m->blacklisted)
			printf("      blacklisted (modprobe.d)\n");
		for (size_t j = 0; j < m->kabi.n_problems; j++) {
			_cleanup_free_ char *d =
				kabi_problem_describe(&m->kabi.problems[j]);
			printf("      %s\n", strna(d));
		}
	}
	STRV_FOREACH(p, a->dangling)
		printf("  %s: dangling weak-updates link (its target is gone); run 'kmodctl kernel "
		       "add %s' to clean up\n",
		       *p, a->kver);
	STRV_FOREACH(p, a->warnings)
		printf("  warning: %s\n", *p);
	printf("  %zu modules (%zu listed): %zu ok, %zu missing symbol, %zu CRC mismatch, "
	       "%zu vermagic mismatch, %zu unknown, %zu shadowed; %zu not owned by a package, "
	       "%zu unsigned, %zu out-of-tree, %zu blacklisted, %zu dangling links: %s\n",
	       c.modules, shown, c.verdict[KABI_OK], c.verdict[KABI_MISSING_SYMBOL],
	       c.verdict[KABI_CRC_MISMATCH], c.verdict[KABI_VERMAGIC_MISMATCH],
	       c.verdict[KABI_UNKNOWN], c.shadowed, c.unowned, c.unsigned_, c.out_of_tree,
	       c.blacklisted, strv_length(a->dangling),
	       kernel_clean(a) ? "clean" : "NOT clean");
}

/* Prometheus text exposition: label values escaped (\\, \", \n). */
static void prom_label(FILE *f, const char *name, const char *value, bool first)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", name);
	for (const char *p = strempty(value); *p; p++)
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p == '"')
			fputs("\\\"", f);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	fputc('"', f);
}

static int write_prometheus(const char *path, AuditKernel *ks, size_t n)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 0;
	FILE *f;
	bool clean = true;
	int r;

	f = open_memstream(&buf, &size);
	if (!f)
		return log_oom();

	fprintf(f,
		"# HELP kmodd_audit_modules Modules audited, by kernel, source and verdict.\n"
		"# TYPE kmodd_audit_modules gauge\n");
	for (size_t k = 0; k < n; k++) {
		for (AuditSource s = 0; s < _AUDIT_SOURCE_MAX; s++)
			for (KabiVerdict v = 0; v <= _KABI_VERDICT_MAX; v++) {
				size_t cnt = 0;

				for (size_t i = 0; i < ks[k].n_modules; i++) {
					const AuditModule *m = &ks[k].modules[i];

					if (m->source != s)
						continue;
					if (v == _KABI_VERDICT_MAX ?
						    m->kabi.shadowed_by != NULL :
						    (!m->kabi.shadowed_by &&
						     m->kabi.verdict == v))
						cnt++;
				}
				fputs("kmodd_audit_modules{", f);
				prom_label(f, "kernel", ks[k].kver, true);
				prom_label(f, "source", audit_source_to_string(s), false);
				prom_label(f, "verdict",
					   v == _KABI_VERDICT_MAX ?
						   "shadowed" :
						   kabi_verdict_to_string(v),
					   false);
				fprintf(f, "} %zu\n", cnt);
			}
	}

	fprintf(f, "# HELP kmodd_audit_module_failed A module the kernel would not load "
		   "(verdict other than ok).\n"
		   "# TYPE kmodd_audit_module_failed gauge\n");
	for (size_t k = 0; k < n; k++)
		for (size_t i = 0; i < ks[k].n_modules; i++) {
			const AuditModule *m = &ks[k].modules[i];

			if (!audit_module_failed(m))
				continue;
			fputs("kmodd_audit_module_failed{", f);
			prom_label(f, "kernel", ks[k].kver, true);
			prom_label(f, "module", m->name, false);
			prom_label(f, "path", m->path, false);
			prom_label(f, "built_for", m->origin_kver, false);
			prom_label(f, "source", audit_source_to_string(m->source), false);
			prom_label(f, "package", m->package, false);
			prom_label(f, "verdict", kabi_verdict_to_string(m->kabi.verdict),
				   false);
			fputs("} 1\n", f);
		}

	fprintf(f,
		"# HELP kmodd_audit_modules_unowned Modules not owned by any package.\n"
		"# TYPE kmodd_audit_modules_unowned gauge\n");
	for (size_t k = 0; k < n; k++) {
		Counts c;

		count(&ks[k], &c);
		fputs("kmodd_audit_modules_unowned{", f);
		prom_label(f, "kernel", ks[k].kver, true);
		fprintf(f, "} %zu\n", c.unowned);
	}
	fprintf(f, "# HELP kmodd_audit_modules_unsigned Modules without a signature.\n"
		   "# TYPE kmodd_audit_modules_unsigned gauge\n");
	for (size_t k = 0; k < n; k++) {
		Counts c;

		count(&ks[k], &c);
		fputs("kmodd_audit_modules_unsigned{", f);
		prom_label(f, "kernel", ks[k].kver, true);
		fprintf(f, "} %zu\n", c.unsigned_);
	}
	fprintf(f,
		"# HELP kmodd_audit_modules_blacklisted Modules blacklisted in modprobe.d.\n"
		"# TYPE kmodd_audit_modules_blacklisted gauge\n");
	for (size_t k = 0; k < n; k++) {
		Counts c;

		count(&ks[k], &c);
		fputs("kmodd_audit_modules_blacklisted{", f);
		prom_label(f, "kernel", ks[k].kver, true);
		fprintf(f, "} %zu\n", c.blacklisted);
	}
	fprintf(f,
		"# HELP kmodd_audit_dangling_links weak-updates links whose target is gone.\n"
		"# TYPE kmodd_audit_dangling_links gauge\n");
	for (size_t k = 0; k < n; k++) {
		fputs("kmodd_audit_dangling_links{", f);
		prom_label(f, "kernel", ks[k].kver, true);
		fprintf(f, "} %zu\n", strv_length(ks[k].dangling));
	}
	fprintf(f,
		"# HELP kmodd_audit_kernel_tainted /proc/sys/kernel/tainted of the running "
		"kernel.\n"
		"# TYPE kmodd_audit_kernel_tainted gauge\n");
	for (size_t k = 0; k < n; k++) {
		if (ks[k].tainted < 0)
			continue;
		fputs("kmodd_audit_kernel_tainted{", f);
		prom_label(f, "kernel", ks[k].kver, true);
		fprintf(f, "} %ld\n", ks[k].tainted);
	}
	fprintf(f, "# HELP kmodd_audit_module_tainted Loaded modules with a taint flag.\n"
		   "# TYPE kmodd_audit_module_tainted gauge\n");
	for (size_t k = 0; k < n; k++)
		for (size_t i = 0; i < ks[k].n_modules; i++) {
			const AuditModule *m = &ks[k].modules[i];

			if (isempty(m->taint))
				continue;
			fputs("kmodd_audit_module_tainted{", f);
			prom_label(f, "kernel", ks[k].kver, true);
			prom_label(f, "module", m->name, false);
			prom_label(f, "taint", m->taint, false);
			fputs("} 1\n", f);
		}

	for (size_t k = 0; k < n; k++)
		clean = clean && kernel_clean(&ks[k]);
	fprintf(f,
		"# HELP kmodd_audit_clean 1 when every audited module would load and no link "
		"dangles.\n"
		"# TYPE kmodd_audit_clean gauge\n"
		"kmodd_audit_clean %d\n",
		clean ? 1 : 0);
	fprintf(f,
		"# HELP kmodd_audit_last_run_timestamp_seconds When the audit ran.\n"
		"# TYPE kmodd_audit_last_run_timestamp_seconds gauge\n"
		"kmodd_audit_last_run_timestamp_seconds %lld\n",
		(long long)time(NULL));
	if (fclose(f) != 0)
		return log_oom();

	r = write_file_atomic(path, buf, size, 0644);
	if (r < 0)
		return log_error_errno(
			r,
			"%s: cannot write the metrics: %m; check the directory "
			"(node_exporter's --collector.textfile.directory).",
			path);
	return 0;
}

static int log_audit_error(const char *kver, const char *path, int r)
{
	if (r == -ENOEXEC)
		return log_error_errno(
			r,
			"%s: not a valid kernel module (truncated, or not ELF); "
			"remove or replace the file.",
			strna(path));
	if (r == -EBADMSG)
		return log_error_errno(r,
				       "%s: malformed Module.symvers; fix the file or pass "
				       "--symvers.",
				       strna(path));
	if (path)
		return log_error_errno(r, "Cannot audit kernel %s: %s: %m", kver, path);
	return log_error_errno(r, "Cannot audit kernel %s: %m", kver);
}

int verb_audit(int argc, char *argv[])
{
	static const struct option options[] = {
		COMMON_LONG_OPTIONS,
		{ "all-kernels", no_argument, NULL, ARG_ALL_KERNELS },
		{ "prometheus", required_argument, NULL, ARG_PROMETHEUS },
		{ "all", no_argument, NULL, ARG_ALL },
		{},
	};
	_cleanup_strv_free_ char **kvers = NULL;
	AuditKernel *ks = NULL;
	size_t n = 0;
	bool clean = true;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		if (parse_common_option(c, optarg))
			continue;
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_ALL_KERNELS:
			arg_all_kernels = true;
			break;
		case ARG_PROMETHEUS:
			arg_prometheus = optarg;
			break;
		case ARG_ALL:
			arg_all_modules = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		log_error("Unexpected argument '%s'; see 'kmodctl audit --help'.",
			  argv[optind]);
		return EXIT_USAGE;
	}
	if (arg_all_kernels && arg_kernel) {
		log_error("--kernel and --all-kernels exclude each other.");
		return EXIT_USAGE;
	}
	if (arg_json && arg_prometheus) {
		log_error("--json and --prometheus exclude each other.");
		return EXIT_USAGE;
	}

	if (arg_all_kernels) {
		r = audit_list_kernels(arg_root, &kvers);
		if (r < 0 || !kvers || !kvers[0])
			return log_error_errno(
				r < 0 ? r : -ENOENT,
				"No kernel under %s/lib/modules: %m; pass --root.",
				streq(arg_root, "/") ? "" : arg_root);
	} else if (arg_kernel) {
		if (strv_extend(&kvers, arg_kernel) < 0)
			return log_oom();
	} else {
		char *k = NULL;

		r = kernel_release_default(arg_root, &k);
		if (r == -ENOTUNIQ)
			return log_error_errno(
				r,
				"Several kernels under %s/lib/modules; choose one "
				"with --kernel or use --all-kernels.",
				arg_root);
		if (r < 0)
			return log_error_errno(
				r,
				"No kernel module tree under %s/lib/modules: %m; "
				"pass --root/--kernel.",
				streq(arg_root, "/") ? "" : arg_root);
		if (strv_consume(&kvers, k) < 0)
			return log_oom();
	}

	ks = calloc(strv_length(kvers) + 1, sizeof(AuditKernel));
	if (!ks)
		return log_oom();
	STRV_FOREACH(k, kvers) {
		_cleanup_free_ char *bad = NULL;
		AuditOptions o = { .symvers = arg_symvers, .own_tree = true };

		r = audit_kernel(arg_root, *k, &o, &ks[n], &bad);
		if (r < 0) {
			log_audit_error(*k, bad, r);
			goto finish;
		}
		clean = clean && kernel_clean(&ks[n]);
		n++;
	}

	if (arg_prometheus) {
		r = write_prometheus(arg_prometheus, ks, n);
		if (r < 0)
			goto finish;
	} else if (arg_json) {
		_cleanup_json_put_ json_object *o = json_object_new_object();
		json_object *a = json_object_new_array();

		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, kernel_json(&ks[i]));
		json_object_object_add(o, "kernels", a);
		json_object_object_add(o, "clean", json_object_new_boolean(clean));
		printf("%s\n", json_object_to_json_string_ext(
				       o, JSON_C_TO_STRING_PRETTY |
						  JSON_C_TO_STRING_NOSLASHESCAPE));
	} else
		for (size_t i = 0; i < n; i++)
			print_table(&ks[i]);
	r = clean ? 0 : EXIT_DIFFERENCES;
finish:
	for (size_t i = 0; i < n; i++)
		audit_kernel_done(&ks[i]);
	free(ks);
	return r < 0 ? EXIT_FAILURE : r;
}

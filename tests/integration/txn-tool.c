/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * txn-tool: drives transaction_install() without a resolver, and writes hostile packages,
 * for the transaction tests (test-txn*.sh). Never installed.
 *
 *   txn-tool install ROOT KVER [--load MOD]... [--checksum HEX] [--reason R]
 *                    [--require-signature KEY.asc]... [--dry-run] RPM...
 *       RPM is a path or a file:// / http:// URL; the package description (name, evr,
 *       arch, provides, requires, supplements) is read from the file's header, and its
 *       checksum (as repository metadata would give it) is the file's sha256 unless
 *       --checksum overrides it (for the first package). --file PATH names another
 *       copy to read the description from (for a URL, or a corrupt package).
 *   txn-tool mkrpm OUTDIR KVER KIND MODULE.ko [VERSION]
 *       writes OUTDIR/evil-KIND-VERSION-1.x86_64.rpm (VERSION 1 by default) whose payload
 *       holds MODULE.ko as:
 *       good (updates/evil.ko), dotdot (updates/../../../../etc/passwd), absolute
 *       (/etc/evil.ko), symlink, setuid, setgid, device (a character device),
 *       notmodule (updates/evil.txt), outside
 *       (kernel/evil.ko), overwrite (updates/.../e1000.ko, the file of e1000's KMP).
 *
 * Exit status: 0 ok, 1 failure (the report's error on stderr), 5 lock held.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include <rpm/header.h>
#include <rpm/rpmds.h>
#include <rpm/rpmio.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmts.h>

#include "fetch.h"
#include "kmp.h"
#include "log.h"
#include "strv.h"
#include "transaction.h"

static int deps_of(Header h, rpmTagVal tag, char ***ret)
{
	rpmds ds = rpmdsNew(h, tag, 0);

	*ret = NULL;
	if (!ds)
		return 0;
	while (rpmdsNext(ds) >= 0) {
		rpmsenseFlags f = rpmdsFlags(ds);
		const char *evr = rpmdsEVR(ds);
		char *s;
		const char *op = (f & RPMSENSE_LESS) && (f & RPMSENSE_EQUAL)	? "<=" :
				 (f & RPMSENSE_GREATER) && (f & RPMSENSE_EQUAL) ? ">=" :
				 (f & RPMSENSE_LESS)				? "<" :
				 (f & RPMSENSE_GREATER)				? ">" :
										  "=";

		if (!isempty(evr) && asprintf(&s, "%s %s %s", rpmdsN(ds), op, evr) < 0)
			return -ENOMEM;
		if (isempty(evr) && !(s = strdup(rpmdsN(ds))))
			return -ENOMEM;
		if (strv_consume(ret, s) < 0)
			return -ENOMEM;
	}
	rpmdsFree(ds);
	return 0;
}

static int ref_from_file(const char *path, PackageRef *p)
{
	rpmts ts;
	FD_t fd;
	Header h = NULL;
	rpmRC rc;
	int r;

	r = kmp_init();
	if (r < 0)
		return r;
	fd = Fopen(path, "r.ufdio");
	if (!fd || Ferror(fd))
		return -errno ?: -EIO;
	ts = rpmtsCreate();
	rpmtsSetVSFlags(ts, RPMVSF_MASK_NODIGESTS | RPMVSF_MASK_NOSIGNATURES);
	rc = rpmReadPackageFile(ts, fd, path, &h);
	Fclose(fd);
	rpmtsFree(ts);
	if (rc != RPMRC_OK && rc != RPMRC_NOKEY && rc != RPMRC_NOTTRUSTED)
		return -EBADMSG;
	p->name = strdup(headerGetString(h, RPMTAG_NAME));
	if (asprintf(&p->evr, "%s-%s", headerGetString(h, RPMTAG_VERSION),
		     headerGetString(h, RPMTAG_RELEASE)) < 0)
		p->evr = NULL;
	p->arch = strdup(headerGetString(h, RPMTAG_ARCH));
	r = deps_of(h, RPMTAG_PROVIDENAME, &p->provides);
	if (r >= 0)
		r = deps_of(h, RPMTAG_REQUIRENAME, &p->requires);
	if (r >= 0)
		r = deps_of(h, RPMTAG_SUPPLEMENTNAME, &p->supplements);
	headerFree(h);
	if (r < 0 || !p->name || !p->evr || !p->arch)
		return -ENOMEM;
	return 0;
}

static int install(int argc, char *argv[])
{
	_cleanup_strv_free_ char **load = NULL, **keys = NULL;
	_cleanup_(txn_report_done) TxnReport rep = {};
	const char *root, *kver, *checksum = NULL, *file = NULL, *reason = "user";
	PackageRef *pkgs = NULL;
	size_t n = 0;
	TxnOptions o = { .load = true, .command = "txn-tool install" };
	int r, i;

	if (argc < 4)
		return 2;
	root = argv[2];
	kver = argv[3];
	pkgs = calloc((size_t)argc, sizeof(PackageRef));
	if (!pkgs)
		return 1;
	for (i = 4; i < argc; i++) {
		PackageRef *p;
		char sum[65];
		const char *local;

		if (streq(argv[i], "--load") && i + 1 < argc) {
			(void)strv_extend(&load, argv[++i]);
			continue;
		}
		if (streq(argv[i], "--checksum") && i + 1 < argc) {
			checksum = argv[++i];
			continue;
		}
		if (streq(argv[i], "--file") && i + 1 < argc) {
			file = argv[++i];
			continue;
		}
		if (streq(argv[i], "--reason") && i + 1 < argc) {
			reason = argv[++i];
			continue;
		}
		if (streq(argv[i], "--require-signature") && i + 1 < argc) {
			o.require_signature = true;
			(void)strv_extend(&keys, argv[++i]);
			continue;
		}
		if (streq(argv[i], "--dry-run")) {
			o.dry_run = true;
			continue;
		}
		p = &pkgs[n];
		local = file ?: startswith(argv[i], "file://") ?: argv[i];
		r = ref_from_file(local, p);
		if (r < 0) {
			fprintf(stderr, "%s: cannot read the package: %s\n", local,
				strerror(-r));
			return 1;
		}
		if (strstr(argv[i], "://"))
			p->url = strdup(argv[i]);
		else {
			_cleanup_free_ char *abs = realpath(argv[i], NULL);
			if (!abs || asprintf(&p->url, "file://%s", abs) < 0)
				return 1;
		}
		/* the checksum of what is downloaded, as metadata describing that file has it */
		if (n == 0 && checksum)
			p->checksum = strdup(checksum);
		else if (sha256_file(strstr(argv[i], "://") ?
					     startswith(argv[i], "file://") ?: local :
					     argv[i],
				     sum) >= 0)
			p->checksum = strdup(sum);
		p->repo_id = strdup("test");
		p->reason = install_reason_from_string(reason);
		p->requested_by = strdup(p->name);
		file = NULL;
		n++;
	}

	o.signature_keys = keys;
	r = transaction_install(root, kver, pkgs, n, load, &o, &rep);
	if (rep.recovery_action)
		printf("recovered: %s\n", rep.recovery_action);
	STRV_FOREACH(s, rep.installed)
		printf("installed %s\n", *s);
	STRV_FOREACH(s, rep.loaded)
		printf("loaded %s\n", *s);
	STRV_FOREACH(s, rep.load_failed)
		printf("load failed %s\n", *s);
	for (size_t k = 0; k < n; k++)
		package_ref_done(&pkgs[k]);
	free(pkgs);
	if (r < 0) {
		fprintf(stderr, "txn-tool: %s: %s (%s)\n", strna(rep.error_path),
			rep.error_message ?: strerror(-r), strerrorname_np(-r));
		return r == -EWOULDBLOCK ? 5 : 1;
	}
	return 0;
}

static int mkrpm(int argc, char *argv[])
{
	_cleanup_(kmp_package_freep) KmpPackage *p = NULL;
	_cleanup_free_ char *path = NULL, *name = NULL, *fname = NULL, *evr = NULL;
	_cleanup_close_ int dfd = -EBADF;
	const char *out, *kver, *kind, *src;
	KmpWritten w;
	KmpFile *f;
	int r;

	if (argc != 6 && argc != 7)
		return 2;
	out = argv[2];
	kver = argv[3];
	kind = argv[4];
	src = argv[5];
	if (kmp_init() < 0)
		return 1;
	if (asprintf(&name, "evil-%s", kind) < 0)
		return 1;
	p = kmp_package_new(name, argc == 7 ? argv[6] : "1", "1", "x86_64");
	if (!p)
		return 1;
	if (streq(kind, "good") || streq(kind, "symlink") || streq(kind, "setuid") ||
	    streq(kind, "device") || streq(kind, "setgid"))
		r = asprintf(&path, "/lib/modules/%s/updates/evil.ko", kver);
	else if (streq(kind, "dotdot"))
		r = asprintf(&path, "/lib/modules/%s/updates/../../../../etc/passwd",
			     kver);
	else if (streq(kind, "absolute"))
		r = asprintf(&path, "/etc/evil.ko");
	else if (streq(kind, "notmodule"))
		r = asprintf(&path, "/lib/modules/%s/updates/evil.txt", kver);
	else if (streq(kind, "outside"))
		r = asprintf(&path, "/lib/modules/%s/kernel/evil.ko", kver);
	else if (streq(kind, "overwrite"))
		r = asprintf(
			&path,
			"/lib/modules/%s/updates/drivers/net/ethernet/intel/e1000/e1000.ko",
			kver);
	else
		return 2;
	if (r < 0)
		return 1;
	r = kmp_package_add_file(p, path, src, 0);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", src, strerror(-r));
		return 1;
	}
	f = &p->files[0];
	if (streq(kind, "symlink"))
		f->mode = S_IFLNK | 0777;
	if (streq(kind, "setuid"))
		f->mode = S_IFREG | S_ISUID | 0755;
	if (streq(kind, "setgid"))
		f->mode = S_IFREG | S_ISGID | 0755;
	if (streq(kind, "device"))
		f->mode = S_IFCHR | 0644;
	evr = kmp_package_evr(p);
	if (!evr)
		return 1;
	(void)kmp_package_add_dep(p, KMP_DEP_PROVIDES, name, KMP_DEP_EQUAL, evr);
	fname = kmp_package_filename(p);
	dfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!fname || dfd < 0)
		return 1;
	r = kmp_package_write(p, dfd, fname, &w);
	if (r < 0) {
		fprintf(stderr, "writing %s: %s\n", fname, strerror(-r));
		return 1;
	}
	printf("%s/%s\n", out, fname);
	return 0;
}

int main(int argc, char *argv[])
{
	log_set_program("txn-tool");
	if (getenv("KMODD_DEBUG"))
		log_set_max_level(LOG_DEBUG);
	if (argc >= 2 && streq(argv[1], "install"))
		return install(argc, argv);
	if (argc >= 2 && streq(argv[1], "mkrpm"))
		return mkrpm(argc, argv);
	fprintf(stderr,
		"usage: txn-tool install ROOT KVER [--load MOD] [--checksum HEX] RPM...\n"
		"       txn-tool mkrpm OUTDIR KVER KIND MODULE.ko\n");
	return 2;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <rpm/header.h>
#include <rpm/rpmarchive.h>
#include <rpm/rpmcrypto.h>
#include <rpm/rpmfiles.h>
#include <rpm/rpmio.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmlog.h>
#include <rpm/rpmts.h>
#include <zstd.h>

#include "fileio.h"
#include "kmp-rpm.h"
#include "kmp.h"
#include "log.h"
#include "strv.h"

#define RPMLEAD_SIZE 96
#define RPM_HEADER_MAGIC_SIZE 8
#define SIG_RESERVED_SPACE 32

static const uint8_t header_magic[RPM_HEADER_MAGIC_SIZE] = { 0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0 };

DEFINE_TRIVIAL_CLEANUP_FUNC(Header, headerFree);
DEFINE_TRIVIAL_CLEANUP_FUNC(rpmts, rpmtsFree);
DEFINE_TRIVIAL_CLEANUP_FUNC(rpmfiles, rpmfilesFree);
DEFINE_TRIVIAL_CLEANUP_FUNC(rpmfi, rpmfiFree);

static void fdclosep(FD_t *fd)
{
	if (*fd)
		Fclose(*fd);
}

int kmp_init(void)
{
	static bool done = false;

	if (done)
		return 0;
	/* librpm: no config files of the host are needed to write; reading needs the
	 * default vsflags only. rpmReadConfigFiles also initialises the crypto backend. */
	rpmSetVerbosity(RPMLOG_CRIT);
	if (rpmReadConfigFiles(NULL, NULL) != 0) {
		log_debug("librpm: reading the configuration failed");
		return -EIO;
	}
	if (rpmInitCrypto() != 0) {
		log_debug("librpm: crypto initialisation failed");
		return -EIO;
	}
	done = true;
	return 0;
}

int kmp_package_set(char **field, const char *value)
{
	char *v = NULL;

	if (value) {
		v = strdup(value);
		if (!v)
			return -ENOMEM;
	}
	free(*field);
	*field = v;
	return 0;
}

KmpPackage *kmp_package_new(const char *name, const char *version, const char *release,
			    const char *arch)
{
	_cleanup_kmp_package_free_ KmpPackage *p = NULL;

	p = calloc(1, sizeof(KmpPackage));
	if (!p)
		return NULL;
	p->name = strdup(name);
	p->version = strdup(version);
	p->release = strdup(release);
	p->arch = strdup(arch);
	p->group = strdup("System/Kernel");
	p->license = strdup("GPL-2.0-only");
	if (!p->name || !p->version || !p->release || !p->arch || !p->group || !p->license)
		return NULL;
	p->compress_level = 3;
	return TAKE_PTR(p);
}

KmpPackage *kmp_package_free(KmpPackage *p)
{
	if (!p)
		return NULL;
	free(p->name);
	free(p->version);
	free(p->release);
	free(p->arch);
	free(p->summary);
	free(p->description);
	free(p->license);
	free(p->group);
	free(p->url);
	free(p->vendor);
	free(p->buildhost);
	free(p->sourcerpm);
	for (int k = 0; k < _KMP_DEP_KIND_MAX; k++) {
		for (size_t i = 0; i < p->n_deps[k]; i++) {
			free(p->deps[k][i].name);
			free(p->deps[k][i].evr);
		}
		free(p->deps[k]);
	}
	for (size_t i = 0; i < p->n_files; i++) {
		free(p->files[i].path);
		free(p->files[i].data);
	}
	free(p->files);
	free(p);
	return NULL;
}

int kmp_package_add_dep(KmpPackage *p, KmpDepKind kind, const char *name, uint32_t flags,
			const char *evr)
{
	KmpDep *d;

	if (kind < 0 || kind >= _KMP_DEP_KIND_MAX || isempty(name))
		return -EINVAL;
	if (!GREEDY_REALLOC(p->deps[kind], p->allocated_deps[kind], p->n_deps[kind] + 1))
		return -ENOMEM;
	d = &p->deps[kind][p->n_deps[kind]];
	d->name = strdup(name);
	d->evr = evr ? strdup(evr) : NULL;
	d->flags = evr ? flags : 0;
	if (!d->name || (evr && !d->evr)) {
		free(d->name);
		free(d->evr);
		return -ENOMEM;
	}
	p->n_deps[kind]++;
	return 0;
}

static int hex_digest(int algo, const void *data, size_t size, char *ret, size_t ret_size)
{
	DIGEST_CTX ctx;
	void *out = NULL;
	size_t len = 0;

	ctx = rpmDigestInit(algo, RPMDIGEST_NONE);
	if (!ctx)
		return -EIO;
	rpmDigestUpdate(ctx, data, size);
	if (rpmDigestFinal(ctx, &out, &len, 1) != 0 || !out)
		return -EIO;
	if (strlen(out) >= ret_size) {
		free(out);
		return -EINVAL;
	}
	strcpy(ret, out);
	free(out);
	return 0;
}

int kmp_package_add_file(KmpPackage *p, const char *path, const char *source_path,
			 uint32_t max_mtime)
{
	_cleanup_free_ char *data = NULL, *dup = NULL;
	struct stat st;
	size_t size = 0;
	KmpFile *f;
	int r;

	if (!path || path[0] != '/')
		return -EINVAL;
	if (stat(source_path, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EISDIR;
	if ((uint64_t)st.st_size >= UINT32_MAX)
		return -EFBIG;
	r = read_full_file(source_path, 0, &data, &size);
	if (r < 0)
		return r;
	dup = strdup(path);
	if (!dup)
		return -ENOMEM;
	if (!GREEDY_REALLOC(p->files, p->allocated_files, p->n_files + 1))
		return -ENOMEM;
	f = &p->files[p->n_files];
	*f = (KmpFile){
		.mode = S_IFREG | 0644,
		.mtime = (uint32_t)st.st_mtime,
		.size = size,
	};
	if (max_mtime != 0 && f->mtime > max_mtime)
		f->mtime = max_mtime;
	r = hex_digest(RPM_HASH_SHA256, data, size, f->digest, sizeof(f->digest));
	if (r < 0)
		return r;
	f->path = TAKE_PTR(dup);
	f->data = TAKE_PTR(data);
	p->n_files++;
	return 0;
}

char *kmp_package_filename(const KmpPackage *p)
{
	char *s;

	if (asprintf(&s, "%s-%s-%s.%s.rpm", p->name, p->version, p->release, p->arch) < 0)
		return NULL;
	return s;
}

char *kmp_package_evr(const KmpPackage *p)
{
	char *s;

	if (asprintf(&s, "%s-%s", p->version, p->release) < 0)
		return NULL;
	return s;
}

char *kmp_module_stem(const char *path)
{
	const char *base = strrchr(path, '/');
	const char *dot;

	base = base ? base + 1 : path;
	dot = strstr(base, ".ko");
	return dot ? strndup(base, (size_t)(dot - base)) : strdup(base);
}

char *kmp_kabi_from_release(const char *kver, const char *flavour)
{
	size_t fl = strlen(flavour), kl = strlen(kver);
	char *k = strdup(kver);

	if (!k)
		return NULL;
	if (kl > fl + 1 && streq(k + kl - fl, flavour) && k[kl - fl - 1] == '-')
		k[kl - fl - 1] = 0;
	for (char *c = k; *c; c++)
		if (*c == '-')
			*c = '_';
	return k;
}

char *kmp_package_name(const char *stem, const char *flavour, const char *kabi)
{
	char *s;

	if (asprintf(&s, "%s-kmp-%s%s%s", stem, flavour, kabi ? "-" : "", strempty(kabi)) < 0)
		return NULL;
	return s;
}

int kmp_format_crc(uint64_t crc, char buf[static 17])
{
	return snprintf(buf, 17, "%" PRIx64, crc);
}

/* A growable byte buffer for the cpio archive. */
typedef struct Buf {
	uint8_t *data;
	size_t size, allocated;
} Buf;

static int buf_put(Buf *b, const void *data, size_t n)
{
	if (!GREEDY_REALLOC(b->data, b->allocated, b->size + n))
		return -ENOMEM;
	memcpy(b->data + b->size, data, n);
	b->size += n;
	return 0;
}

static int buf_pad(Buf *b, size_t modulo)
{
	static const uint8_t zeros[8] = {};
	size_t left = (modulo - b->size % modulo) % modulo;

	return left ? buf_put(b, zeros, left) : 0;
}

static int cpio_entry(Buf *b, const char *name, uint32_t ino, uint32_t mode, uint32_t nlink,
		      uint32_t mtime, const void *data, size_t size)
{
	char hdr[6 + 13 * 8 + 1];
	size_t namesize = strlen(name) + 1;
	int r;

	/* newc: magic, ino, mode, uid, gid, nlink, mtime, filesize, dev major/minor,
	 * rdev major/minor, namesize, check */
	snprintf(hdr, sizeof(hdr),
		 "070701%08x%08x%08x%08x%08x%08x%08zx%08x%08x%08x%08x%08zx%08x", ino, mode, 0,
		 0, nlink, mtime, size, 0, 0, 0, 0, namesize, 0);
	r = buf_put(b, hdr, sizeof(hdr) - 1);
	if (r < 0)
		return r;
	r = buf_put(b, name, namesize);
	if (r < 0)
		return r;
	r = buf_pad(b, 4);
	if (r < 0)
		return r;
	if (size > 0) {
		r = buf_put(b, data, size);
		if (r < 0)
			return r;
	}
	return buf_pad(b, 4);
}

static int compare_file(const void *a, const void *b)
{
	return strcmp(((const KmpFile *)a)->path, ((const KmpFile *)b)->path);
}

static int compare_dep(const void *a, const void *b)
{
	const KmpDep *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	if (x->flags != y->flags)
		return x->flags < y->flags ? -1 : 1;
	return strcmp(strempty(x->evr), strempty(y->evr));
}

static void deps_sort_unique(KmpDep *d, size_t *n)
{
	size_t j = 0;

	if (*n == 0)
		return;
	qsort(d, *n, sizeof(KmpDep), compare_dep);
	for (size_t i = 1; i < *n; i++) {
		if (compare_dep(&d[j], &d[i]) == 0) {
			free(d[i].name);
			free(d[i].evr);
			continue;
		}
		d[++j] = d[i];
	}
	*n = j + 1;
}

static const struct {
	rpmTagVal name, flags, version;
} dep_tags[_KMP_DEP_KIND_MAX] = {
	[KMP_DEP_PROVIDES] = { RPMTAG_PROVIDENAME, RPMTAG_PROVIDEFLAGS, RPMTAG_PROVIDEVERSION },
	[KMP_DEP_REQUIRES] = { RPMTAG_REQUIRENAME, RPMTAG_REQUIREFLAGS, RPMTAG_REQUIREVERSION },
	[KMP_DEP_RECOMMENDS] = { RPMTAG_RECOMMENDNAME, RPMTAG_RECOMMENDFLAGS,
				 RPMTAG_RECOMMENDVERSION },
	[KMP_DEP_SUPPLEMENTS] = { RPMTAG_SUPPLEMENTNAME, RPMTAG_SUPPLEMENTFLAGS,
				  RPMTAG_SUPPLEMENTVERSION },
};

static int put_deps(Header h, const KmpPackage *p, KmpDepKind k)
{
	_cleanup_free_ const char **names = NULL, **versions = NULL;
	_cleanup_free_ uint32_t *flags = NULL;
	size_t n = p->n_deps[k];

	if (n == 0)
		return 0;
	names = calloc(n, sizeof(char *));
	versions = calloc(n, sizeof(char *));
	flags = calloc(n, sizeof(uint32_t));
	if (!names || !versions || !flags)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		names[i] = p->deps[k][i].name;
		versions[i] = strempty(p->deps[k][i].evr);
		flags[i] = p->deps[k][i].flags;
	}
	if (!headerPutStringArray(h, dep_tags[k].name, names, n) ||
	    !headerPutUint32(h, dep_tags[k].flags, flags, n) ||
	    !headerPutStringArray(h, dep_tags[k].version, versions, n))
		return -EINVAL;
	return 0;
}

static int put_i18n(Header h, rpmTagVal tag, const char *s)
{
	return headerAddI18NString(h, tag, s, "C") ? 0 : -EINVAL;
}

/* The file list: dirnames/basenames/dirindexes and the per-file attributes. */
static int put_files(Header h, const KmpPackage *p, uint64_t *ret_installed)
{
	size_t n = p->n_files, n_dirs = 0;
	_cleanup_free_ const char **basenames = NULL, **dirnames = NULL, **digests = NULL,
				  **empty = NULL, **owner = NULL;
	_cleanup_free_ char **dirbuf = NULL;
	_cleanup_free_ uint32_t *dirindexes = NULL, *sizes = NULL, *mtimes = NULL,
				*flags = NULL, *verify = NULL, *devices = NULL, *inodes = NULL;
	_cleanup_free_ uint16_t *modes = NULL, *rdevs = NULL;
	uint32_t algo = RPM_HASH_SHA256;
	uint64_t installed = 0;
	int r = 0;

	if (n == 0) {
		*ret_installed = 0;
		return 0;
	}
	basenames = calloc(n, sizeof(char *));
	dirnames = calloc(n, sizeof(char *));
	dirbuf = calloc(n, sizeof(char *));
	digests = calloc(n, sizeof(char *));
	empty = calloc(n, sizeof(char *));
	owner = calloc(n, sizeof(char *));
	dirindexes = calloc(n, sizeof(uint32_t));
	sizes = calloc(n, sizeof(uint32_t));
	mtimes = calloc(n, sizeof(uint32_t));
	flags = calloc(n, sizeof(uint32_t));
	verify = calloc(n, sizeof(uint32_t));
	devices = calloc(n, sizeof(uint32_t));
	inodes = calloc(n, sizeof(uint32_t));
	modes = calloc(n, sizeof(uint16_t));
	rdevs = calloc(n, sizeof(uint16_t));
	if (!basenames || !dirnames || !dirbuf || !digests || !empty || !owner || !dirindexes ||
	    !sizes || !mtimes || !flags || !verify || !devices || !inodes || !modes || !rdevs)
		return -ENOMEM;

	for (size_t i = 0; i < n; i++) {
		const KmpFile *f = &p->files[i];
		const char *slash = strrchr(f->path, '/');
		size_t dl = (size_t)(slash - f->path) + 1;

		basenames[i] = slash + 1;
		/* files are sorted by path, so one directory's files are adjacent */
		if (n_dirs == 0 || strlen(dirbuf[n_dirs - 1]) != dl ||
		    strncmp(dirbuf[n_dirs - 1], f->path, dl) != 0) {
			dirbuf[n_dirs] = strndup(f->path, dl);
			if (!dirbuf[n_dirs]) {
				r = -ENOMEM;
				goto finish;
			}
			n_dirs++;
		}
		dirindexes[i] = (uint32_t)(n_dirs - 1);
		sizes[i] = (uint32_t)f->size;
		mtimes[i] = f->mtime;
		modes[i] = (uint16_t)f->mode;
		digests[i] = f->digest;
		empty[i] = "";
		owner[i] = "root";
		verify[i] = UINT32_MAX;
		devices[i] = 1;
		inodes[i] = (uint32_t)(i + 1);
		installed += f->size;
	}
	for (size_t i = 0; i < n_dirs; i++)
		dirnames[i] = dirbuf[i];

	if (!headerPutUint32(h, RPMTAG_FILESIZES, sizes, n) ||
	    !headerPutUint16(h, RPMTAG_FILEMODES, modes, n) ||
	    !headerPutUint16(h, RPMTAG_FILERDEVS, rdevs, n) ||
	    !headerPutUint32(h, RPMTAG_FILEMTIMES, mtimes, n) ||
	    !headerPutStringArray(h, RPMTAG_FILEDIGESTS, digests, n) ||
	    !headerPutStringArray(h, RPMTAG_FILELINKTOS, empty, n) ||
	    !headerPutUint32(h, RPMTAG_FILEFLAGS, flags, n) ||
	    !headerPutStringArray(h, RPMTAG_FILEUSERNAME, owner, n) ||
	    !headerPutStringArray(h, RPMTAG_FILEGROUPNAME, owner, n) ||
	    !headerPutUint32(h, RPMTAG_FILEVERIFYFLAGS, verify, n) ||
	    !headerPutUint32(h, RPMTAG_FILEDEVICES, devices, n) ||
	    !headerPutUint32(h, RPMTAG_FILEINODES, inodes, n) ||
	    !headerPutStringArray(h, RPMTAG_FILELANGS, empty, n) ||
	    !headerPutUint32(h, RPMTAG_DIRINDEXES, dirindexes, n) ||
	    !headerPutStringArray(h, RPMTAG_BASENAMES, basenames, n) ||
	    !headerPutStringArray(h, RPMTAG_DIRNAMES, dirnames, n_dirs) ||
	    !headerPutUint32(h, RPMTAG_FILEDIGESTALGO, &algo, 1)) {
		r = -EINVAL;
		goto finish;
	}
	*ret_installed = installed;
finish:
	for (size_t i = 0; i < n_dirs; i++)
		free(dirbuf[i]);
	return r;
}

static int build_main_header(KmpPackage *p, const char *pld_digest, const char *upld_digest,
			     uint64_t *ret_installed, Header *ret)
{
	_cleanup_(headerFreep) Header h = NULL;
	const char *i18n[] = { "C" };
	uint32_t u32;
	uint64_t installed = 0;
	int r;

	h = headerNew();
	if (!h)
		return -ENOMEM;

	if (!headerPutStringArray(h, RPMTAG_HEADERI18NTABLE, i18n, 1) ||
	    !headerPutString(h, RPMTAG_NAME, p->name) ||
	    !headerPutString(h, RPMTAG_VERSION, p->version) ||
	    !headerPutString(h, RPMTAG_RELEASE, p->release))
		return -EINVAL;
	r = put_i18n(h, RPMTAG_SUMMARY, p->summary ?: p->name);
	if (r < 0)
		return r;
	r = put_i18n(h, RPMTAG_DESCRIPTION, p->description ?: p->summary ?: p->name);
	if (r < 0)
		return r;
	u32 = p->buildtime;
	if (!headerPutUint32(h, RPMTAG_BUILDTIME, &u32, 1) ||
	    !headerPutString(h, RPMTAG_BUILDHOST, p->buildhost ?: "localhost"))
		return -EINVAL;

	r = put_files(h, p, &installed);
	if (r < 0)
		return r;
	if (installed >= UINT32_MAX)
		return -EFBIG;
	u32 = (uint32_t)installed;
	if (!headerPutUint32(h, RPMTAG_SIZE, &u32, 1) ||
	    (p->vendor && !headerPutString(h, RPMTAG_VENDOR, p->vendor)) ||
	    !headerPutString(h, RPMTAG_LICENSE, p->license ?: "unknown"))
		return -EINVAL;
	r = put_i18n(h, RPMTAG_GROUP, p->group ?: "Unspecified");
	if (r < 0)
		return r;
	if ((p->url && !headerPutString(h, RPMTAG_URL, p->url)) ||
	    !headerPutString(h, RPMTAG_OS, "linux") ||
	    !headerPutString(h, RPMTAG_ARCH, p->arch) ||
	    /* a binary package is one with a SOURCERPM */
	    !headerPutString(h, RPMTAG_SOURCERPM, p->sourcerpm ?: "unknown.src.rpm") ||
	    !headerPutString(h, RPMTAG_RPMVERSION, "4.18.0") ||
	    !headerPutString(h, RPMTAG_PAYLOADFORMAT, "cpio") ||
	    !headerPutString(h, RPMTAG_PAYLOADCOMPRESSOR, "zstd"))
		return -EINVAL;
	{
		char level[16];

		snprintf(level, sizeof(level), "%d", p->compress_level);
		if (!headerPutString(h, RPMTAG_PAYLOADFLAGS, level))
			return -EINVAL;
	}
	if (!headerPutString(h, RPMTAG_PLATFORM, "x86_64-pc-linux-gnu") ||
	    !headerPutString(h, RPMTAG_ENCODING, "utf-8"))
		return -EINVAL;

	for (int k = 0; k < _KMP_DEP_KIND_MAX; k++) {
		r = put_deps(h, p, k);
		if (r < 0)
			return r;
	}

	u32 = RPM_HASH_SHA256;
	if (!headerPutUint32(h, RPMTAG_PAYLOADDIGESTALGO, &u32, 1) ||
	    !headerPutString(h, RPMTAG_PAYLOADDIGEST, pld_digest) ||
	    !headerPutString(h, RPMTAG_PAYLOADDIGESTALT, upld_digest))
		return -EINVAL;

	/* into one immutable region, as rpmbuild writes it */
	h = headerReload(h, RPMTAG_HEADERIMMUTABLE);
	if (!h)
		return -EINVAL;
	*ret_installed = installed;
	*ret = TAKE_PTR(h);
	return 0;
}

static int sig_put(Header sig, rpmTagVal tag, rpmTagType type, const void *data,
		   rpm_count_t count)
{
	struct rpmtd_s td;

	rpmtdReset(&td);
	td.tag = tag;
	td.type = type;
	td.count = count;
	td.data = (void *)data;
	return headerPut(sig, &td, HEADERPUT_DEFAULT) ? 0 : -EINVAL;
}

static int build_signature(const char *sha256, const char *sha1, const uint8_t md5[16],
			   uint64_t size, uint64_t payload_size, void **ret, size_t *ret_size)
{
	_cleanup_(headerFreep) Header sig = NULL;
	uint8_t reserved[SIG_RESERVED_SPACE] = {};
	uint32_t s32 = (uint32_t)size, p32 = (uint32_t)payload_size;
	unsigned bsize = 0;
	void *blob;
	int r;

	if (size >= UINT32_MAX || payload_size >= UINT32_MAX)
		return -EFBIG;
	sig = headerNew();
	if (!sig)
		return -ENOMEM;
	if ((r = sig_put(sig, RPMSIGTAG_SHA256, RPM_STRING_TYPE, sha256, 1)) < 0 ||
	    (r = sig_put(sig, RPMSIGTAG_SHA1, RPM_STRING_TYPE, sha1, 1)) < 0 ||
	    (r = sig_put(sig, RPMSIGTAG_MD5, RPM_BIN_TYPE, md5, 16)) < 0 ||
	    (r = sig_put(sig, RPMSIGTAG_PAYLOADSIZE, RPM_INT32_TYPE, &p32, 1)) < 0 ||
	    (r = sig_put(sig, RPMSIGTAG_SIZE, RPM_INT32_TYPE, &s32, 1)) < 0 ||
	    (r = sig_put(sig, RPMSIGTAG_RESERVEDSPACE, RPM_BIN_TYPE, reserved,
			 sizeof(reserved))) < 0)
		return r;
	sig = headerReload(sig, RPMTAG_HEADERSIGNATURES);
	if (!sig)
		return -EINVAL;
	blob = headerExport(sig, &bsize);
	if (!blob)
		return -EINVAL;
	*ret = blob;
	*ret_size = bsize;
	return 0;
}

static void lead_fill(uint8_t lead[static RPMLEAD_SIZE], const KmpPackage *p)
{
	uint16_t v;

	memset(lead, 0, RPMLEAD_SIZE);
	lead[0] = 0xed;
	lead[1] = 0xab;
	lead[2] = 0xee;
	lead[3] = 0xdb;
	lead[4] = 3; /* major */
	lead[5] = 0; /* minor */
	v = htons(0); /* binary */
	memcpy(lead + 6, &v, 2);
	v = htons(streq(p->arch, "noarch") ? 0 : 1); /* archnum: x86 family */
	memcpy(lead + 8, &v, 2);
	snprintf((char *)lead + 10, 66, "%s-%s-%s", p->name, p->version, p->release);
	v = htons(1); /* osnum: Linux */
	memcpy(lead + 76, &v, 2);
	v = htons(5); /* signature type: header-style */
	memcpy(lead + 78, &v, 2);
}

static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t k = writev(fd, iov, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

int kmp_package_write(KmpPackage *p, int dirfd, const char *filename, KmpWritten *ret)
{
	_cleanup_free_ uint8_t *payload = NULL, *hdr = NULL, *sigbuf = NULL;
	_cleanup_free_ void *sigblob = NULL;
	_cleanup_free_ char *tmp = NULL;
	_cleanup_(headerFreep) Header h = NULL;
	_cleanup_close_ int fd = -EBADF;
	char pld[65], upld[65], sha1[41], sha256[65], filesum[65];
	uint8_t lead[RPMLEAD_SIZE], *md5 = NULL;
	size_t payload_size, hdr_size, sig_size, sigblob_size = 0, md5_len = 0;
	uint64_t installed = 0;
	unsigned bsize = 0;
	void *blob;
	DIGEST_CTX ctx;
	Buf cpio = {};
	int r;

	for (int k = 0; k < _KMP_DEP_KIND_MAX; k++)
		deps_sort_unique(p->deps[k], &p->n_deps[k]);
	if (p->n_files > 0)
		qsort(p->files, p->n_files, sizeof(KmpFile), compare_file);

	/* payload: cpio, names with the "./" prefix rpm expects */
	for (size_t i = 0; i < p->n_files; i++) {
		const KmpFile *f = &p->files[i];
		_cleanup_free_ char *name = NULL;

		if (asprintf(&name, ".%s", f->path) < 0) {
			r = -ENOMEM;
			goto finish;
		}
		r = cpio_entry(&cpio, name, (uint32_t)(i + 1), f->mode, 1, f->mtime, f->data,
			       f->size);
		if (r < 0)
			goto finish;
	}
	r = cpio_entry(&cpio, "TRAILER!!!", 0, 0, 1, 0, NULL, 0);
	if (r < 0)
		goto finish;
	if (cpio.size >= UINT32_MAX) {
		r = -EFBIG;
		goto finish;
	}

	payload = malloc(ZSTD_compressBound(cpio.size));
	if (!payload) {
		r = -ENOMEM;
		goto finish;
	}
	payload_size = ZSTD_compress(payload, ZSTD_compressBound(cpio.size), cpio.data,
				     cpio.size, p->compress_level);
	if (ZSTD_isError(payload_size)) {
		log_debug("zstd: %s", ZSTD_getErrorName(payload_size));
		r = -EIO;
		goto finish;
	}

	r = hex_digest(RPM_HASH_SHA256, payload, payload_size, pld, sizeof(pld));
	if (r < 0)
		goto finish;
	r = hex_digest(RPM_HASH_SHA256, cpio.data, cpio.size, upld, sizeof(upld));
	if (r < 0)
		goto finish;

	r = build_main_header(p, pld, upld, &installed, &h);
	if (r < 0)
		goto finish;
	blob = headerExport(h, &bsize);
	if (!blob) {
		r = -EINVAL;
		goto finish;
	}
	hdr_size = RPM_HEADER_MAGIC_SIZE + bsize;
	hdr = malloc(hdr_size);
	if (!hdr) {
		free(blob);
		r = -ENOMEM;
		goto finish;
	}
	memcpy(hdr, header_magic, RPM_HEADER_MAGIC_SIZE);
	memcpy(hdr + RPM_HEADER_MAGIC_SIZE, blob, bsize);
	free(blob);

	r = hex_digest(RPM_HASH_SHA1, hdr, hdr_size, sha1, sizeof(sha1));
	if (r < 0)
		goto finish;
	r = hex_digest(RPM_HASH_SHA256, hdr, hdr_size, sha256, sizeof(sha256));
	if (r < 0)
		goto finish;
	ctx = rpmDigestInit(RPM_HASH_MD5, RPMDIGEST_NONE);
	if (!ctx) {
		r = -EIO;
		goto finish;
	}
	rpmDigestUpdate(ctx, hdr, hdr_size);
	rpmDigestUpdate(ctx, payload, payload_size);
	if (rpmDigestFinal(ctx, (void **)&md5, &md5_len, 0) != 0 || md5_len != 16) {
		free(md5);
		r = -EIO;
		goto finish;
	}

	r = build_signature(sha256, sha1, md5, hdr_size + payload_size, cpio.size, &sigblob,
			    &sigblob_size);
	free(md5);
	if (r < 0)
		goto finish;
	sig_size = RPM_HEADER_MAGIC_SIZE + sigblob_size;
	sig_size += (8 - sig_size % 8) % 8;
	sigbuf = calloc(1, sig_size);
	if (!sigbuf) {
		r = -ENOMEM;
		goto finish;
	}
	memcpy(sigbuf, header_magic, RPM_HEADER_MAGIC_SIZE);
	memcpy(sigbuf + RPM_HEADER_MAGIC_SIZE, sigblob, sigblob_size);

	lead_fill(lead, p);

	/* the repository checksum of the whole file */
	ctx = rpmDigestInit(RPM_HASH_SHA256, RPMDIGEST_NONE);
	if (!ctx) {
		r = -EIO;
		goto finish;
	}
	rpmDigestUpdate(ctx, lead, sizeof(lead));
	rpmDigestUpdate(ctx, sigbuf, sig_size);
	rpmDigestUpdate(ctx, hdr, hdr_size);
	rpmDigestUpdate(ctx, payload, payload_size);
	{
		char *out = NULL;

		if (rpmDigestFinal(ctx, (void **)&out, NULL, 1) != 0 || !out) {
			r = -EIO;
			goto finish;
		}
		snprintf(filesum, sizeof(filesum), "%s", out);
		free(out);
	}

	if (asprintf(&tmp, ".#%s.tmp", filename) < 0) {
		r = -ENOMEM;
		goto finish;
	}
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = negative_errno();
		goto finish;
	}
	{
		struct iovec iov[] = {
			{ lead, sizeof(lead) },
			{ sigbuf, sig_size },
			{ hdr, hdr_size },
			{ payload, payload_size },
		};
		r = write_all(fd, iov, (int)ELEMENTSOF(iov));
	}
	if (r >= 0 && close(fd) < 0)
		r = negative_errno();
	fd = -EBADF;
	if (r >= 0 && renameat(dirfd, tmp, dirfd, filename) < 0)
		r = negative_errno();
	if (r < 0) {
		(void)unlinkat(dirfd, tmp, 0);
		goto finish;
	}

	if (ret) {
		*ret = (KmpWritten){
			.file_size = sizeof(lead) + sig_size + hdr_size + payload_size,
			.header_start = sizeof(lead) + sig_size,
			.header_end = sizeof(lead) + sig_size + hdr_size,
			.installed_size = installed,
			.archive_size = cpio.size,
		};
		memcpy(ret->sha256, filesum, sizeof(filesum));
	}
	r = 0;
finish:
	free(cpio.data);
	return r;
}

static int rpmrc_to_errno(rpmRC rc)
{
	switch (rc) {
	case RPMRC_OK:
	case RPMRC_NOTTRUSTED:
	case RPMRC_NOKEY:
		return 0;
	case RPMRC_NOTFOUND:
		return -ENOEXEC;
	case RPMRC_FAIL:
	default:
		return -EBADMSG;
	}
}

int kmp_open_package(const char *path, FD_t *ret_fd, Header *ret_h)
{
	_cleanup_(rpmtsFreep) rpmts ts = NULL;
	_cleanup_(fdclosep) FD_t fd = NULL;
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
	if (!ts)
		return -ENOMEM;
	rpmtsSetVSFlags(ts, RPMVSF_DEFAULT);
	rc = rpmReadPackageFile(ts, fd, path, &h);
	r = rpmrc_to_errno(rc);
	if (r < 0) {
		log_debug("%s: rpm read failed (%d)", path, rc);
		headerFree(h);
		return r;
	}
	*ret_fd = TAKE_PTR(fd);
	*ret_h = h;
	return 0;
}

int kmp_payload_open(FD_t fd, Header h, FD_t *ret)
{
	const char *comp = headerGetString(h, RPMTAG_PAYLOADCOMPRESSOR);
	_cleanup_free_ char *mode = NULL;
	FD_t z;

	static const char *const io[][2] = {
		{ "gzip", "gzdio" }, { "bzip2", "bzdio" }, { "xz", "xzdio" },
		{ "lzma", "lzdio" }, { "zstd", "zstdio" },
	};
	const char *name = "gzdio"; /* rpm's default when the tag is absent */

	for (size_t i = 0; comp && i < ELEMENTSOF(io); i++)
		if (streq(comp, io[i][0]))
			name = io[i][1];
	if (comp && streq(name, "gzdio") && !streq(comp, "gzip"))
		return -EPROTONOSUPPORT;
	if (asprintf(&mode, "r.%s", name) < 0)
		return -ENOMEM;
	z = Fdopen(fd, mode);
	if (!z || Ferror(z))
		return -EBADMSG;
	*ret = z;
	return 0;
}

int kmp_verify_file(const char *path)
{
	_cleanup_(fdclosep) FD_t fd = NULL;
	_cleanup_(headerFreep) Header h = NULL;
	const char *want;
	char got[65], buf[65536];
	DIGEST_CTX ctx;
	char *out = NULL;
	ssize_t k;
	int r;

	r = kmp_open_package(path, &fd, &h);
	if (r < 0)
		return r;

	/* the payload digest over the compressed payload, as rpm -K checks it */
	want = headerGetString(h, RPMTAG_PAYLOADDIGEST);
	if (!want)
		return -EBADMSG;
	ctx = rpmDigestInit(RPM_HASH_SHA256, RPMDIGEST_NONE);
	if (!ctx)
		return -EIO;
	while ((k = Fread(buf, 1, sizeof(buf), fd)) > 0)
		rpmDigestUpdate(ctx, buf, (size_t)k);
	if (rpmDigestFinal(ctx, (void **)&out, NULL, 1) != 0 || !out)
		return -EIO;
	snprintf(got, sizeof(got), "%s", out);
	free(out);
	if (Ferror(fd))
		return -EIO;
	return streq(got, want) ? 0 : -EBADMSG;
}

int kmp_payload_list(const char *path, char ***ret)
{
	_cleanup_(fdclosep) FD_t fd = NULL;
	_cleanup_(headerFreep) Header h = NULL;
	_cleanup_(rpmfilesFreep) rpmfiles files = NULL;
	_cleanup_(rpmfiFreep) rpmfi fi = NULL;
	_cleanup_strv_free_ char **l = NULL;
	FD_t z = NULL;
	int r, rc;

	r = kmp_open_package(path, &fd, &h);
	if (r < 0)
		return r;
	r = kmp_payload_open(fd, h, &z);
	if (r < 0)
		return r;
	files = rpmfilesNew(NULL, h, 0, RPMFI_KEEPHEADER);
	if (!files) {
		Fclose(z);
		fd = NULL;
		return -EBADMSG;
	}
	fi = rpmfiNewArchiveReader(z, files, RPMFI_ITER_READ_ARCHIVE);
	if (!fi) {
		Fclose(z);
		fd = NULL;
		return -EBADMSG;
	}
	while ((rc = rpmfiNext(fi)) >= 0) {
		r = strv_extend(&l, rpmfiFN(fi));
		if (r < 0)
			break;
	}
	if (r >= 0 && rc != RPMERR_ITER_END)
		r = -EBADMSG;
	rpmfiArchiveClose(fi);
	Fclose(z);
	fd = NULL; /* closed with z */
	if (r < 0)
		return r;
	if (!l && !(l = calloc(1, sizeof(char *))))
		return -ENOMEM;
	*ret = TAKE_PTR(l);
	return 0;
}

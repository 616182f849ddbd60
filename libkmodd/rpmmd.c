/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>

#include <rpm/rpmcrypto.h>
#include <zlib.h>

#include "fileio.h"
#include "log.h"
#include "rpmmd.h"

void rpmmd_entry_done(RpmmdEntry *e)
{
	if (!e)
		return;
	free(e->primary);
	free(e->filelists);
	free(e->other);
	*e = (RpmmdEntry){};
}

/* Length of the UTF-8 sequence at s, 0 when it is not a valid one. */
static size_t utf8_valid_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

void xml_escape_fputs(const char *s, FILE *f)
{
	const unsigned char *p = (const unsigned char *)strempty(s);

	while (*p) {
		size_t n;

		switch (*p) {
		case '&':
			fputs("&amp;", f);
			p++;
			continue;
		case '<':
			fputs("&lt;", f);
			p++;
			continue;
		case '>':
			fputs("&gt;", f);
			p++;
			continue;
		case '"':
			fputs("&quot;", f);
			p++;
			continue;
		default:
			break;
		}
		if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') {
			fputc('?', f);
			p++;
			continue;
		}
		n = utf8_valid_len(p);
		if (n == 0) {
			fputc('?', f);
			p++;
			continue;
		}
		fwrite(p, 1, n, f);
		p += n;
	}
}

static const char *flags_str(uint32_t flags)
{
	switch (flags & (KMP_DEP_LESS | KMP_DEP_GREATER | KMP_DEP_EQUAL)) {
	case KMP_DEP_EQUAL:
		return "EQ";
	case KMP_DEP_LESS:
		return "LT";
	case KMP_DEP_GREATER:
		return "GT";
	case KMP_DEP_LESS | KMP_DEP_EQUAL:
		return "LE";
	case KMP_DEP_GREATER | KMP_DEP_EQUAL:
		return "GE";
	default:
		return NULL;
	}
}

/* epoch="E" ver="V" rel="R" of "[E:]V[-R]" */
static void put_evr_attrs(const char *evr, FILE *f)
{
	_cleanup_free_ char *s = strdup(evr);
	char *colon, *dash, *ver;
	const char *epoch = "0";

	if (!s)
		return;
	ver = s;
	colon = strchr(s, ':');
	if (colon) {
		*colon = 0;
		epoch = s;
		ver = colon + 1;
	}
	/* like createrepo_c: the release starts at the first '-' */
	dash = strchr(ver, '-');
	if (dash)
		*dash = 0;
	fputs(" epoch=\"", f);
	xml_escape_fputs(epoch, f);
	fputs("\" ver=\"", f);
	xml_escape_fputs(ver, f);
	fputc('"', f);
	if (dash) {
		fputs(" rel=\"", f);
		xml_escape_fputs(dash + 1, f);
		fputc('"', f);
	}
}

static void put_deps(const KmpPackage *p, KmpDepKind k, const char *element, FILE *f)
{
	bool any = false;

	for (size_t i = 0; i < p->n_deps[k]; i++) {
		const KmpDep *d = &p->deps[k][i];
		const char *fl = flags_str(d->flags);

		if (d->flags & KMP_DEP_RPMLIB)
			continue;
		if (!any) {
			fprintf(f, "    <rpm:%s>\n", element);
			any = true;
		}
		fputs("      <rpm:entry name=\"", f);
		xml_escape_fputs(d->name, f);
		fputc('"', f);
		if (d->evr && fl) {
			fprintf(f, " flags=\"%s\"", fl);
			put_evr_attrs(d->evr, f);
		}
		fputs("/>\n", f);
	}
	if (any)
		fprintf(f, "    </rpm:%s>\n", element);
}

static void put_pkg_version(const KmpPackage *p, FILE *f)
{
	fputs("  <version epoch=\"0\" ver=\"", f);
	xml_escape_fputs(p->version, f);
	fputs("\" rel=\"", f);
	xml_escape_fputs(p->release, f);
	fputs("\"/>\n", f);
}

static void put_pkg_ref(const KmpPackage *p, const KmpWritten *w, FILE *f)
{
	fprintf(f, "<package pkgid=\"%s\" name=\"", w->sha256);
	xml_escape_fputs(p->name, f);
	fputs("\" arch=\"", f);
	xml_escape_fputs(p->arch, f);
	fputs("\">\n", f);
	put_pkg_version(p, f);
}

static void put_element(const char *indent, const char *name, const char *value, FILE *f)
{
	fprintf(f, "%s<%s>", indent, name);
	xml_escape_fputs(value, f);
	fprintf(f, "</%s>\n", name);
}

int rpmmd_format_package(const KmpPackage *p, const KmpWritten *w, const char *location,
			 uint64_t mtime, RpmmdEntry *ret)
{
	RpmmdEntry e = {};
	FILE *f;

	/* primary */
	f = open_memstream(&e.primary, &e.primary_size);
	if (!f)
		return -ENOMEM;
	fputs("<package type=\"rpm\">\n", f);
	put_element("  ", "name", p->name, f);
	put_element("  ", "arch", p->arch, f);
	put_pkg_version(p, f);
	fprintf(f, "  <checksum type=\"sha256\" pkgid=\"YES\">%s</checksum>\n", w->sha256);
	put_element("  ", "summary", p->summary ?: p->name, f);
	put_element("  ", "description", p->description ?: p->summary ?: p->name, f);
	fputs("  <packager></packager>\n", f);
	put_element("  ", "url", strempty(p->url), f);
	fprintf(f, "  <time file=\"%" PRIu64 "\" build=\"%" PRIu32 "\"/>\n", mtime,
		p->buildtime);
	fprintf(f,
		"  <size package=\"%" PRIu64 "\" installed=\"%" PRIu64 "\" archive=\"%" PRIu64
		"\"/>\n",
		w->file_size, w->installed_size, w->archive_size);
	fputs("  <location href=\"", f);
	xml_escape_fputs(location, f);
	fputs("\"/>\n  <format>\n", f);
	put_element("    ", "rpm:license", strempty(p->license), f);
	put_element("    ", "rpm:vendor", strempty(p->vendor), f);
	put_element("    ", "rpm:group", strempty(p->group), f);
	put_element("    ", "rpm:buildhost", strempty(p->buildhost), f);
	put_element("    ", "rpm:sourcerpm", strempty(p->sourcerpm), f);
	fprintf(f, "    <rpm:header-range start=\"%" PRIu64 "\" end=\"%" PRIu64 "\"/>\n",
		w->header_start, w->header_end);
	put_deps(p, KMP_DEP_PROVIDES, "provides", f);
	put_deps(p, KMP_DEP_REQUIRES, "requires", f);
	put_deps(p, KMP_DEP_RECOMMENDS, "recommends", f);
	put_deps(p, KMP_DEP_SUPPLEMENTS, "supplements", f);
	fputs("  </format>\n</package>\n", f);
	if (fclose(f) != 0)
		goto oom;

	/* filelists */
	f = open_memstream(&e.filelists, &e.filelists_size);
	if (!f)
		goto oom;
	put_pkg_ref(p, w, f);
	for (size_t i = 0; i < p->n_files; i++)
		put_element("  ", "file", p->files[i].path, f);
	fputs("</package>\n", f);
	if (fclose(f) != 0)
		goto oom;

	/* other: no changelogs */
	f = open_memstream(&e.other, &e.other_size);
	if (!f)
		goto oom;
	put_pkg_ref(p, w, f);
	fputs("</package>\n", f);
	if (fclose(f) != 0)
		goto oom;

	*ret = e;
	return 0;
oom:
	rpmmd_entry_done(&e);
	return -ENOMEM;
}

typedef enum RpmmdDocument {
	RPMMD_PRIMARY,
	RPMMD_FILELISTS,
	RPMMD_OTHER,
	_RPMMD_DOCUMENT_MAX,
} RpmmdDocument;

static const char *const document_name[_RPMMD_DOCUMENT_MAX] = {
	[RPMMD_PRIMARY] = "primary",
	[RPMMD_FILELISTS] = "filelists",
	[RPMMD_OTHER] = "other",
};

typedef struct Document {
	RpmmdDocument type;
	const char *dir;
	const RpmmdEntry *entries;
	size_t n;
	int level;
	uint64_t timestamp;

	/* results */
	char checksum[65];
	char open_checksum[65];
	uint64_t size, open_size;
	char *location; /* repodata/<checksum>-<type>.xml.gz */
	int r;
} Document;

static int sha256_hex(DIGEST_CTX ctx, char ret[static 65])
{
	char *out = NULL;

	if (rpmDigestFinal(ctx, (void **)&out, NULL, 1) != 0 || !out)
		return -EIO;
	snprintf(ret, 65, "%s", out);
	free(out);
	return 0;
}

static const char *entry_part(const RpmmdEntry *e, RpmmdDocument t, size_t *ret_size)
{
	switch (t) {
	case RPMMD_PRIMARY:
		*ret_size = e->primary_size;
		return e->primary;
	case RPMMD_FILELISTS:
		*ret_size = e->filelists_size;
		return e->filelists;
	case RPMMD_OTHER:
		*ret_size = e->other_size;
		return e->other;
	case _RPMMD_DOCUMENT_MAX:
		break;
	}
	*ret_size = 0;
	return NULL;
}

/* Streams the document through sha256 (open checksum) and gzip into memory. */
static int document_build(Document *d)
{
	_cleanup_free_ char *head = NULL, *gz = NULL, *tmp = NULL, *path = NULL;
	const char *foot = NULL;
	size_t gz_allocated = 0, gz_size = 0;
	DIGEST_CTX open_ctx = NULL, ctx = NULL;
	z_stream zs = {};
	int r = -EINVAL;

	switch (d->type) {
	case RPMMD_PRIMARY:
		r = asprintf(&head,
			     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			     "<metadata xmlns=\"http://linux.duke.edu/metadata/common\" "
			     "xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" "
			     "packages=\"%zu\">\n",
			     d->n);
		foot = "</metadata>\n";
		break;
	case RPMMD_FILELISTS:
		r = asprintf(&head,
			     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			     "<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" "
			     "packages=\"%zu\">\n",
			     d->n);
		foot = "</filelists>\n";
		break;
	case RPMMD_OTHER:
		r = asprintf(&head,
			     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			     "<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" "
			     "packages=\"%zu\">\n",
			     d->n);
		foot = "</otherdata>\n";
		break;
	case _RPMMD_DOCUMENT_MAX:
		return -EINVAL;
	}
	if (r < 0)
		return -ENOMEM;

	/* gzip wrapper (windowBits 15 + 16): header with mtime 0, so output is reproducible */
	if (deflateInit2(&zs, d->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	open_ctx = rpmDigestInit(RPM_HASH_SHA256, RPMDIGEST_NONE);
	if (!open_ctx) {
		deflateEnd(&zs);
		return -EIO;
	}

	for (size_t i = 0; i <= d->n + 1; i++) {
		const char *chunk;
		size_t len;
		bool last = i == d->n + 1;

		if (i == 0) {
			chunk = head;
			len = strlen(head);
		} else if (last) {
			chunk = foot;
			len = strlen(foot);
		} else
			chunk = entry_part(&d->entries[i - 1], d->type, &len);
		if (!chunk)
			len = 0;
		rpmDigestUpdate(open_ctx, chunk ?: "", len);
		d->open_size += len;

		zs.next_in = (Bytef *)(chunk ?: "");
		zs.avail_in = (uInt)len;
		for (;;) {
			int zr;

			if (!GREEDY_REALLOC(gz, gz_allocated, gz_size + 65536)) {
				deflateEnd(&zs);
				rpmDigestFinal(open_ctx, NULL, NULL, 0);
				return -ENOMEM;
			}
			zs.next_out = (Bytef *)gz + gz_size;
			zs.avail_out = (uInt)(gz_allocated - gz_size);
			zr = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
			gz_size = gz_allocated - zs.avail_out;
			if (zr == Z_STREAM_END)
				break;
			if (zr != Z_OK && zr != Z_BUF_ERROR) {
				deflateEnd(&zs);
				rpmDigestFinal(open_ctx, NULL, NULL, 0);
				return -EIO;
			}
			if (!last && zs.avail_in == 0 && zs.avail_out > 0)
				break;
		}
	}
	deflateEnd(&zs);
	r = sha256_hex(open_ctx, d->open_checksum);
	if (r < 0)
		return r;

	ctx = rpmDigestInit(RPM_HASH_SHA256, RPMDIGEST_NONE);
	if (!ctx)
		return -EIO;
	rpmDigestUpdate(ctx, gz, gz_size);
	r = sha256_hex(ctx, d->checksum);
	if (r < 0)
		return r;
	d->size = gz_size;

	if (asprintf(&d->location, "repodata/%s-%s.xml.gz", d->checksum,
		     document_name[d->type]) < 0)
		return -ENOMEM;
	path = path_join(d->dir, d->location);
	if (!path)
		return -ENOMEM;
	return write_file_atomic(path, gz, gz_size, 0644);
}

static void *document_thread(void *userdata)
{
	Document *d = userdata;

	d->r = document_build(d);
	return NULL;
}

static int remove_stale(const char *repodata, Document docs[static _RPMMD_DOCUMENT_MAX])
{
	DIR *dir;
	struct dirent *de;

	dir = opendir(repodata);
	if (!dir)
		return negative_errno();
	while ((de = readdir(dir))) {
		bool keep = false;

		if (de->d_name[0] == '.' || streq(de->d_name, "repomd.xml"))
			continue;
		for (int i = 0; i < _RPMMD_DOCUMENT_MAX; i++)
			if (streq(de->d_name, docs[i].location + strlen("repodata/")))
				keep = true;
		if (!keep)
			(void)unlinkat(dirfd(dir), de->d_name, 0);
	}
	closedir(dir);
	return 0;
}

int rpmmd_write(const char *repo_dir, const RpmmdEntry *entries, size_t n, uint64_t timestamp,
		int compress_level, unsigned n_threads)
{
	Document docs[_RPMMD_DOCUMENT_MAX];
	_cleanup_free_ char *repodata = NULL, *repomd_path = NULL, *xml = NULL;
	size_t xml_size = 0;
	pthread_t thread;
	bool threaded = false;
	FILE *f;
	int r;

	repodata = path_join(repo_dir, "repodata");
	if (!repodata)
		return -ENOMEM;
	r = mkdir_p(repodata, 0755);
	if (r < 0)
		return r;

	for (int i = 0; i < _RPMMD_DOCUMENT_MAX; i++)
		docs[i] = (Document){
			.type = (RpmmdDocument)i,
			.dir = repo_dir,
			.entries = entries,
			.n = n,
			.level = compress_level,
			.timestamp = timestamp,
		};

	/* primary is the big one: it gets its own thread */
	if (n_threads > 1 && pthread_create(&thread, NULL, document_thread,
					    &docs[RPMMD_PRIMARY]) == 0)
		threaded = true;
	else
		docs[RPMMD_PRIMARY].r = document_build(&docs[RPMMD_PRIMARY]);
	docs[RPMMD_FILELISTS].r = document_build(&docs[RPMMD_FILELISTS]);
	docs[RPMMD_OTHER].r = document_build(&docs[RPMMD_OTHER]);
	if (threaded)
		pthread_join(thread, NULL);

	for (int i = 0; i < _RPMMD_DOCUMENT_MAX; i++)
		if (docs[i].r < 0 && r >= 0)
			r = docs[i].r;
	if (r < 0)
		goto finish;

	f = open_memstream(&xml, &xml_size);
	if (!f) {
		r = -ENOMEM;
		goto finish;
	}
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" "
		"xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n"
		"  <revision>%" PRIu64 "</revision>\n",
		timestamp);
	for (int i = 0; i < _RPMMD_DOCUMENT_MAX; i++)
		fprintf(f,
			"  <data type=\"%s\">\n"
			"    <checksum type=\"sha256\">%s</checksum>\n"
			"    <open-checksum type=\"sha256\">%s</open-checksum>\n"
			"    <location href=\"%s\"/>\n"
			"    <timestamp>%" PRIu64 "</timestamp>\n"
			"    <size>%" PRIu64 "</size>\n"
			"    <open-size>%" PRIu64 "</open-size>\n"
			"  </data>\n",
			document_name[i], docs[i].checksum, docs[i].open_checksum,
			docs[i].location, timestamp, docs[i].size, docs[i].open_size);
	fputs("</repomd>\n", f);
	if (fclose(f) != 0) {
		r = -ENOMEM;
		goto finish;
	}

	repomd_path = path_join(repodata, "repomd.xml");
	if (!repomd_path) {
		r = -ENOMEM;
		goto finish;
	}
	r = write_file_atomic(repomd_path, xml, xml_size, 0644);
	if (r < 0)
		goto finish;
	r = remove_stale(repodata, docs);
finish:
	for (int i = 0; i < _RPMMD_DOCUMENT_MAX; i++)
		free(docs[i].location);
	return r;
}

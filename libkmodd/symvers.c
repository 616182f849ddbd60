/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/stat.h>
#include <zlib.h>

#include "fileio.h"
#include "log.h"
#include "symvers.h"

#define SYMVERS_MAX_SIZE (256u * 1024 * 1024)

Symvers *symvers_free(Symvers *s)
{
	if (!s)
		return NULL;
	hashmap_free(s->by_symbol);
	free(s->entries);
	free(s->data);
	free(s->path);
	free(s);
	return NULL;
}

static int read_gz(const char *path, char **ret, size_t *ret_size)
{
	_cleanup_free_ char *buf = NULL;
	size_t n = 0, allocated = 0;
	gzFile f;
	int r = 0;

	f = gzopen(path, "rbe");
	if (!f)
		return errno > 0 ? -errno : -ENOMEM;
	for (;;) {
		int k;

		if (!GREEDY_REALLOC(buf, allocated, n + 65536 + 1)) {
			r = -ENOMEM;
			break;
		}
		k = gzread(f, buf + n, 65536);
		if (k < 0) {
			r = -EBADMSG;
			break;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > SYMVERS_MAX_SIZE) {
			r = -EFBIG;
			break;
		}
	}
	gzclose(f);
	if (r < 0)
		return r;
	if (!buf && !(buf = malloc(1)))
		return -ENOMEM;
	buf[n] = 0;
	*ret = TAKE_PTR(buf);
	*ret_size = n;
	return 0;
}

static int parse_hex32(const char *s, uint32_t *ret)
{
	char *end;
	unsigned long long v;

	if (!startswith(s, "0x") || !s[2])
		return -EINVAL;
	errno = 0;
	v = strtoull(s + 2, &end, 16);
	if (errno != 0 || *end != 0 || v > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

static int parse(Symvers *s, size_t size, unsigned *ret_bad_line)
{
	size_t allocated = 0;
	unsigned line = 0;
	char *p;
	int r;

	if (memchr(s->data, 0, size))
		return -EBADMSG;

	s->by_symbol = hashmap_new(NULL, NULL);
	if (!s->by_symbol)
		return -ENOMEM;

	for (p = s->data; *p;) {
		char *eol = strchr(p, '\n'), *f[5] = {};
		size_t nf = 0;
		SymversEntry *e;

		line++;
		if (eol)
			*eol = 0;
		if (*p) {
			for (char *q = p;; q++) {
				if (nf == ELEMENTSOF(f))
					break;
				f[nf++] = q;
				q = strchr(q, '\t');
				if (!q)
					break;
				*q = 0;
			}
			if (nf < 4 || isempty(f[1]) || isempty(f[2]))
				goto bad;
			if (!GREEDY_REALLOC(s->entries, allocated, s->n_entries + 1))
				return -ENOMEM;
			e = &s->entries[s->n_entries];
			if (parse_hex32(f[0], &e->crc) < 0)
				goto bad;
			e->symbol = f[1];
			e->module = f[2];
			e->export_type = f[3];
			e->ns = nf > 4 ? f[4] : "";
			s->n_entries++;
		}
		if (!eol)
			break;
		p = eol + 1;
	}

	/* Index after the array stopped moving. A symbol listed twice keeps its first entry. */
	for (size_t i = 0; i < s->n_entries; i++) {
		r = hashmap_put(s->by_symbol, s->entries[i].symbol, &s->entries[i]);
		if (r < 0 && r != -EEXIST)
			return r;
	}
	return 0;
bad:
	if (ret_bad_line)
		*ret_bad_line = line;
	return log_debug_errno(-EBADMSG, "%s:%u: malformed Module.symvers line", s->path, line);
}

int symvers_parse(const char *name, const char *data, size_t size, Symvers **ret,
		  unsigned *ret_bad_line)
{
	_cleanup_symvers_free_ Symvers *s = NULL;
	int r;

	s = calloc(1, sizeof(Symvers));
	if (!s)
		return -ENOMEM;
	s->path = strdup(name);
	s->data = malloc(size + 1);
	if (!s->path || !s->data)
		return -ENOMEM;
	memcpy(s->data, data, size);
	s->data[size] = 0;
	r = parse(s, size, ret_bad_line);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

int symvers_load(const char *path, Symvers **ret, unsigned *ret_bad_line)
{
	_cleanup_symvers_free_ Symvers *s = NULL;
	size_t size = 0;
	int r;

	s = calloc(1, sizeof(Symvers));
	if (!s)
		return -ENOMEM;
	s->path = strdup(path);
	if (!s->path)
		return -ENOMEM;
	if (endswith(path, ".gz"))
		r = read_gz(path, &s->data, &size);
	else
		r = read_full_file(path, SYMVERS_MAX_SIZE, &s->data, &size);
	if (r < 0)
		return log_debug_errno(r, "Failed to read %s: %m", path);
	r = parse(s, size, ret_bad_line);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

const SymversEntry *symvers_get(const Symvers *s, const char *symbol)
{
	return s ? hashmap_get(s->by_symbol, symbol) : NULL;
}

int symvers_find(const char *root, const char *kver, char **ret_path)
{
	char *candidates[3] = {};
	int r = -ENOENT;

	if (asprintf(&candidates[0], "%s/lib/modules/%s/build/Module.symvers", root, kver) < 0)
		candidates[0] = NULL;
	if (asprintf(&candidates[1], "%s/usr/src/linux-headers-%s/Module.symvers", root, kver) < 0)
		candidates[1] = NULL;
	if (asprintf(&candidates[2], "%s/boot/symvers-%s.gz", root, kver) < 0)
		candidates[2] = NULL;

	for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
		_cleanup_free_ char *resolved = NULL;
		const char *p = candidates[i];
		struct stat st;

		if (!p) {
			r = -ENOMEM;
			break;
		}
		/* build/ is an absolute symlink meant for the root it lives in: resolve it there */
		if (i == 0 && !streq(root, "/")) {
			_cleanup_free_ char *link = NULL, *l = NULL;
			char buf[4096];
			ssize_t k;

			link = path_join(root, "lib/modules", kver, "build");
			if (!link) {
				r = -ENOMEM;
				break;
			}
			k = readlink(link, buf, sizeof(buf) - 1);
			if (k > 0 && buf[0] == '/') {
				buf[k] = 0;
				resolved = path_join(root, buf, "Module.symvers");
				if (!resolved) {
					r = -ENOMEM;
					break;
				}
				p = resolved;
			}
		}
		if (lstat(p, &st) == 0) {
			*ret_path = strdup(p);
			r = *ret_path ? 0 : -ENOMEM;
			break;
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
		free(candidates[i]);
	return r;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <inttypes.h>

#include "repomd.h"
#include "sha256.h"

#define MAX_DEPTH 16
#define MAX_TEXT 4096

Repomd *repomd_free(Repomd *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n_data; i++) {
		free(m->data[i].type);
		free(m->data[i].checksum_type);
		free(m->data[i].checksum);
		free(m->data[i].location);
	}
	free(m->data);
	free(m->revision);
	free(m);
	return NULL;
}

const RepomdData *repomd_find(const Repomd *m, const char *type)
{
	for (size_t i = 0; i < m->n_data; i++)
		if (streq(m->data[i].type, type))
			return &m->data[i];
	return NULL;
}

bool repo_location_safe(const char *l)
{
	const char *seg;

	if (isempty(l) || l[0] == '/' || strlen(l) > 1024)
		return false;
	for (const char *p = l; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("\\?#:%", *p))
			return false;
	/* no "." or ".." path segment, no empty segment */
	for (seg = l;;) {
		size_t n = strcspn(seg, "/");

		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (!seg[n])
			return true;
		seg += n + 1;
	}
}

/* Decodes the five predefined entities and numeric references to ASCII. */
static char *xml_unescape(const char *s, size_t n)
{
	char *r = malloc(n + 1), *q = r;
	const char *e = s + n;

	if (!r)
		return NULL;
	while (s < e) {
		static const struct {
			const char *name;
			char c;
		} ents[] = { { "&amp;", '&' },
			     { "&lt;", '<' },
			     { "&gt;", '>' },
			     { "&quot;", '"' },
			     { "&apos;", '\'' } };
		bool done = false;

		if (*s != '&') {
			*q++ = *s++;
			continue;
		}
		for (size_t i = 0; i < ELEMENTSOF(ents); i++) {
			size_t l = strlen(ents[i].name);

			if ((size_t)(e - s) >= l && memcmp(s, ents[i].name, l) == 0) {
				*q++ = ents[i].c;
				s += l;
				done = true;
				break;
			}
		}
		if (!done && e - s > 3 && s[1] == '#') {
			const char *semi =
				memchr(s, ';',
				       (size_t)(e - s) < 12 ? (size_t)(e - s) : 12);
			unsigned long v = 0;
			bool hex = s[2] == 'x' || s[2] == 'X';
			const char *d = s + (hex ? 3 : 2);

			if (semi && semi > d) {
				for (; d < semi && isxdigit((unsigned char)*d) &&
				       (hex || isdigit((unsigned char)*d));
				     d++)
					v = v * (hex ? 16 : 10) +
					    (unsigned long)(isdigit((unsigned char)*d) ?
								    *d - '0' :
								    (tolower((
									     unsigned char)*d) -
								     'a' + 10));
				if (d == semi && v > 0 && v < 0x80) {
					*q++ = (char)v;
					s = semi + 1;
					done = true;
				}
			}
		}
		if (!done) {
			free(r);
			return NULL;
		}
	}
	*q = 0;
	return r;
}

static char *strip_dup(const char *s, size_t n)
{
	while (n > 0 && isspace((unsigned char)*s))
		s++, n--;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	return xml_unescape(s, n);
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (isempty(s) || !isdigit((unsigned char)s[0]))
		return -EBADMSG;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end)
		return -EBADMSG;
	*ret = v;
	return 0;
}

static const char *local_name(const char *name)
{
	const char *c = strchr(name, ':');
	return c ? c + 1 : name;
}

/* Finds attribute name in the attribute text [p, e) and returns its unescaped value. */
static int xml_attr(const char *p, const char *e, const char *name, char **ret)
{
	size_t nl = strlen(name);

	*ret = NULL;
	while (p < e) {
		const char *an, *v;
		size_t al;
		char q;

		while (p < e && isspace((unsigned char)*p))
			p++;
		if (p >= e || *p == '/')
			break;
		an = p;
		while (p < e && *p != '=' && !isspace((unsigned char)*p))
			p++;
		al = (size_t)(p - an);
		while (p < e && isspace((unsigned char)*p))
			p++;
		if (p >= e || *p != '=')
			return -EBADMSG;
		p++;
		while (p < e && isspace((unsigned char)*p))
			p++;
		if (p >= e || (*p != '"' && *p != '\''))
			return -EBADMSG;
		q = *p++;
		v = memchr(p, q, (size_t)(e - p));
		if (!v)
			return -EBADMSG;
		if (al == nl && memcmp(an, name, nl) == 0) {
			free(*ret);
			*ret = xml_unescape(p, (size_t)(v - p));
			if (!*ret)
				return -EBADMSG;
		}
		p = v + 1;
	}
	return 0;
}

static const char *find_str(const char *p, const char *e, const char *s)
{
	size_t n = strlen(s);

	for (; p && (size_t)(e - p) >= n; p++) {
		p = memchr(p, s[0], (size_t)(e - p));
		if (!p || (size_t)(e - p) < n)
			return NULL;
		if (memcmp(p, s, n) == 0)
			return p;
	}
	return NULL;
}

static int data_set(RepomdData *d, const char *elem, char *text)
{
	int r = 0;

	if (streq(elem, "checksum")) {
		free(d->checksum);
		for (char *c = text; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		d->checksum = TAKE_PTR(text);
	} else if (streq(elem, "location")) {
		/* href is an attribute; text is ignored */
	} else if (streq(elem, "timestamp"))
		r = parse_u64(text, &d->timestamp);
	else if (streq(elem, "size"))
		r = parse_u64(text, &d->size);
	else if (streq(elem, "open-size"))
		r = parse_u64(text, &d->open_size);
	free(text);
	return r;
}

int repomd_parse(const char *text, size_t size, Repomd **ret)
{
	_cleanup_(repomd_freep) Repomd *m = NULL;
	char stack[MAX_DEPTH][64];
	const char *p = text, *e = text + size, *text_start = NULL;
	size_t depth = 0, allocated = 0;
	bool seen_root = false;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;

	while (p < e) {
		const char *lt = memchr(p, '<', (size_t)(e - p)), *gt, *name, *attrs;
		size_t nl;
		bool closing, empty;
		char nm[64];

		if (!lt)
			break;
		if (memchr(p, 0, (size_t)(lt - p)))
			return -EBADMSG;
		if ((size_t)(e - lt) >= 4 && memcmp(lt, "<!--", 4) == 0) {
			const char *c = find_str(lt + 4, e, "-->");
			if (!c)
				return -EBADMSG;
			p = c + 3;
			continue;
		}
		if ((size_t)(e - lt) >= 2 && (lt[1] == '?' || lt[1] == '!')) {
			/* declarations, processing instructions; no DTDs with internal subsets */
			gt = memchr(lt, '>', (size_t)(e - lt));
			if (!gt || memchr(lt, '[', (size_t)(gt - lt)))
				return -EBADMSG;
			p = gt + 1;
			continue;
		}
		gt = memchr(lt, '>', (size_t)(e - lt));
		if (!gt)
			return -EBADMSG;
		closing = lt[1] == '/';
		name = lt + 1 + closing;
		nl = 0;
		while (name + nl < gt && !isspace((unsigned char)name[nl]) &&
		       name[nl] != '/')
			nl++;
		if (nl == 0 || nl >= sizeof(nm))
			return -EBADMSG;
		memcpy(nm, name, nl);
		nm[nl] = 0;
		attrs = name + nl;
		empty = !closing && gt[-1] == '/';

		if (closing) {
			if (depth == 0 || !streq(stack[depth - 1], nm))
				return -EBADMSG;
			if (text_start) {
				/* end of a captured element */
				_cleanup_free_ char *t = NULL;
				const char *ln = local_name(nm);

				if ((size_t)(lt - text_start) > MAX_TEXT)
					return -EBADMSG;
				t = strip_dup(text_start, (size_t)(lt - text_start));
				if (!t)
					return -EBADMSG;
				if (depth == 2 && streq(ln, "revision")) {
					free(m->revision);
					m->revision = TAKE_PTR(t);
				} else if (depth == 3) {
					r = data_set(&m->data[m->n_data - 1], ln,
						     TAKE_PTR(t));
					if (r < 0)
						return r;
				}
				text_start = NULL;
			}
			depth--;
			p = gt + 1;
			continue;
		}

		if (depth >= MAX_DEPTH)
			return -EBADMSG;
		if (depth == 0) {
			if (seen_root || !streq(local_name(nm), "repomd"))
				return -EBADMSG;
			seen_root = true;
		}
		text_start = NULL;
		if (depth == 1 && streq(local_name(nm), "data")) {
			_cleanup_free_ char *type = NULL;

			r = xml_attr(attrs, gt - empty, "type", &type);
			if (r < 0)
				return r;
			if (isempty(type))
				return -EBADMSG;
			if (m->n_data >= REPOMD_MAX_DATA)
				return -E2BIG;
			if (!GREEDY_REALLOC(m->data, allocated, m->n_data + 1))
				return -ENOMEM;
			m->data[m->n_data++] = (RepomdData){ .type = TAKE_PTR(type) };
		} else if (depth == 2 && m->n_data > 0 &&
			   streq(local_name(stack[1]), "data")) {
			RepomdData *d = &m->data[m->n_data - 1];
			const char *ln = local_name(nm);

			if (streq(ln, "checksum")) {
				free(d->checksum_type);
				r = xml_attr(attrs, gt - empty, "type", &d->checksum_type);
				if (r < 0)
					return r;
			} else if (streq(ln, "location")) {
				free(d->location);
				r = xml_attr(attrs, gt - empty, "href", &d->location);
				if (r < 0)
					return r;
			}
			if (!empty)
				text_start = gt + 1;
		} else if (depth == 1 && streq(local_name(nm), "revision") && !empty)
			text_start = gt + 1;

		if (!empty) {
			memcpy(stack[depth], nm, nl + 1);
			depth++;
		}
		p = gt + 1;
	}
	if (!seen_root || depth != 0)
		return -EBADMSG;

	for (size_t i = 0; i < m->n_data; i++) {
		RepomdData *d = &m->data[i];

		if (d->timestamp > m->timestamp)
			m->timestamp = d->timestamp;
		if (d->checksum && streq_ptr(d->checksum_type, "sha256") &&
		    !sha256_hex_valid(d->checksum))
			return -EBADMSG;
	}
	if (m->timestamp == 0 && m->revision)
		(void)parse_u64(m->revision, &m->timestamp);

	*ret = TAKE_PTR(m);
	return 0;
}

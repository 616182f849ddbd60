/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>

#include "kmodindex.h"

#define INDEX_CHILDMAX 128
#define INDEX_NODE_PREFIX 0x80000000u
#define INDEX_NODE_VALUES 0x40000000u
#define INDEX_NODE_CHILDS 0x20000000u
#define INDEX_NODE_FLAGS 0xF0000000u
#define INDEX_NODE_MASK 0x0FFFFFFFu

static void put_be32_at(unsigned char *w, uint32_t v)
{
	w[0] = v >> 24;
	w[1] = v >> 16;
	w[2] = v >> 8;
	w[3] = v;
}

#define KBUF_BIG ((size_t)512 << 10)
#define KBUF_HUGE ((size_t)2 << 20)

void kbuf_done(KBuf *b)
{
	if (b->borrowed)
		;
	else if (b->mapped)
		munmap(b->data, b->allocated);
	else
		free(b->data);
	*b = (KBuf){};
}

/* A big buffer is a region of its own in transparent huge pages where the kernel has them:
 * a megabyte buffer filled in 4 KiB pages costs a page fault, a page allocation and a page
 * clearing for each of its 256 pages, several times the cost of the bytes themselves. */
int kbuf_region(size_t size, void **ret, size_t *ret_size)
{
	size_t lead;
	char *p, *q;

	if (size > SIZE_MAX / 2)
		return -ENOMEM;
	size = (size + KBUF_HUGE - 1) & ~(KBUF_HUGE - 1);
	p = mmap(NULL, size + KBUF_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	/* aligned to a huge page, the rest given back */
	q = (char *)(((uintptr_t)p + KBUF_HUGE - 1) & ~(uintptr_t)(KBUF_HUGE - 1));
	lead = (size_t)(q - p);
	if (lead > 0)
		munmap(p, lead);
	if (KBUF_HUGE - lead > 0)
		munmap(q + size, KBUF_HUGE - lead);
	(void)madvise(q, size, MADV_HUGEPAGE);
	*ret = q;
	*ret_size = size;
	return 0;
}

static int kbuf_map(KBuf *b, size_t need)
{
	void *q;
	size_t size;

	if (kbuf_region(need + need / 4, &q, &size) < 0)
		return -ENOMEM;
	if (b->size > 0)
		memcpy(q, b->data, b->size + 1);
	kbuf_done(&(KBuf){ .data = b->data,
			   .allocated = b->allocated,
			   .mapped = b->mapped,
			   .borrowed = b->borrowed });
	b->data = q;
	b->allocated = size;
	b->mapped = true;
	b->borrowed = false;
	return 0;
}

int kbuf_reserve(KBuf *b, size_t more)
{
	size_t need;

	if (more > SIZE_MAX - b->size - 1 - KBUF_HUGE * 2)
		return -ENOMEM;
	need = b->size + more + 1;
	if (need <= b->allocated)
		return 0;
	if (need >= KBUF_BIG)
		return kbuf_map(b, need);
	if (b->borrowed) {
		char *p = malloc(need * 2);

		if (!p)
			return -ENOMEM;
		memcpy(p, b->data, b->size + 1);
		*b = (KBuf){ .data = p, .size = b->size, .allocated = need * 2 };
		return 0;
	}
	if (!GREEDY_REALLOC(b->data, b->allocated, need))
		return -ENOMEM;
	return 0;
}

int kbuf_put(KBuf *b, const void *p, size_t n)
{
	if (kbuf_reserve(b, n) < 0)
		return -ENOMEM;
	memcpy(b->data + b->size, p, n);
	b->size += n;
	b->data[b->size] = 0;
	return 0;
}

int kbuf_puts(KBuf *b, const char *s)
{
	return kbuf_put(b, s, strlen(s));
}

int kbuf_putc(KBuf *b, char c)
{
	return kbuf_put(b, &c, 1);
}

int kbuf_put_be32(KBuf *b, uint32_t v)
{
	unsigned char c[4];

	put_be32_at(c, v);
	return kbuf_put(b, c, 4);
}

int kbuf_printf(KBuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t avail = b->allocated > b->size ? b->allocated - b->size : 0;

		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->size : NULL, avail, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if ((size_t)n < avail) {
			b->size += (size_t)n;
			return 0;
		}
		if (kbuf_reserve(b, (size_t)n + 64) < 0)
			return -ENOMEM;
	}
}

/* Strings live in large blocks; an index holds tens of thousands of short ones. */
typedef struct Block {
	struct Block *next;
	size_t used, size;
	char data[];
} Block;

typedef struct Entry {
	const char *key;
	const char *value;
	uint32_t priority;
	uint32_t seq;
} Entry;

struct KmodIndex {
	Entry *entries;
	size_t n_entries, allocated;
	Block *blocks;
};

KmodIndex *kmod_index_new(void)
{
	return calloc(1, sizeof(KmodIndex));
}

KmodIndex *kmod_index_free(KmodIndex *idx)
{
	if (!idx)
		return NULL;
	while (idx->blocks) {
		Block *n = idx->blocks->next;
		free(idx->blocks);
		idx->blocks = n;
	}
	free(idx->entries);
	free(idx);
	return NULL;
}

static const char *index_strdup(KmodIndex *idx, const char *s)
{
	size_t l = strlen(s) + 1;
	Block *b = idx->blocks;

	if (!b || b->size - b->used < l) {
		size_t sz = l > 60000 ? l : 60000;

		b = malloc(sizeof(Block) + sz);
		if (!b)
			return NULL;
		b->used = 0;
		b->size = sz;
		b->next = idx->blocks;
		idx->blocks = b;
	}
	memcpy(b->data + b->used, s, l);
	b->used += l;
	return b->data + b->used - l;
}

static bool is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= INDEX_CHILDMAX)
			return false;
	return true;
}

int kmod_index_add(KmodIndex *idx, const char *key, const char *value, uint32_t priority)
{
	Entry *e;

	if (!is_ascii(key) || !is_ascii(value))
		return -EINVAL;
	if (!GREEDY_REALLOC(idx->entries, idx->allocated, idx->n_entries + 1))
		return -ENOMEM;
	e = &idx->entries[idx->n_entries];
	e->key = index_strdup(idx, key);
	e->value = index_strdup(idx, value);
	if (!e->key || !e->value)
		return -ENOMEM;
	e->priority = priority;
	e->seq = (uint32_t)idx->n_entries++;
	return 0;
}

size_t kmod_index_size(const KmodIndex *idx)
{
	return idx->n_entries;
}

static int value_cmp(const void *a, const void *b)
{
	const Entry *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	/* equal priority: the later insertion comes first, as depmod's list insert does */
	return x->seq > y->seq ? -1 : x->seq < y->seq ? 1 : 0;
}

/* Writes the node for entries [lo, hi), which all share key[0..pos), partitioning them by
 * the next character (an MSD radix sort that builds the trie as it goes). The root keeps an
 * empty prefix; any other node's prefix runs as far as all its keys agree and none ends. */
static int write_node(Entry *e, Entry *tmp, size_t lo, size_t hi, size_t pos, bool root,
		      KBuf *out, uint32_t *ret_offset)
{
	uint32_t child_offs[INDEX_CHILDMAX];
	size_t count[INDEX_CHILDMAX], start[INDEX_CHILDMAX];
	unsigned first = INDEX_CHILDMAX, last = 0, lo_c = INDEX_CHILDMAX - 1, hi_c = 0;
	size_t p = pos, n_values;
	uint32_t offset;
	int r;

	if (!root)
		for (;; p++) {
			char c = e[lo].key[p];
			bool same = c != 0;

			for (size_t i = lo + 1; same && i < hi; i++)
				same = e[i].key[p] == c;
			if (!same)
				break;
		}

	/* counting sort by key[p] over the characters present: values (NUL) first, then
	 * children by character */
	for (size_t i = lo; i < hi; i++) {
		unsigned c = (unsigned char)e[i].key[p];

		if (c < lo_c)
			lo_c = c;
		if (c > hi_c)
			hi_c = c;
	}
	if (lo == hi)
		lo_c = hi_c = 0;
	if (lo_c == hi_c) {
		count[lo_c] = hi - lo;
		start[lo_c] = lo;
	} else {
		size_t fill[INDEX_CHILDMAX];

		for (unsigned c = lo_c; c <= hi_c; c++)
			count[c] = 0;
		for (size_t i = lo; i < hi; i++)
			count[(unsigned char)e[i].key[p]]++;
		start[lo_c] = lo;
		for (unsigned c = lo_c + 1; c <= hi_c; c++)
			start[c] = start[c - 1] + count[c - 1];
		for (unsigned c = lo_c; c <= hi_c; c++)
			fill[c] = start[c];
		for (size_t i = lo; i < hi; i++)
			tmp[fill[(unsigned char)e[i].key[p]]++] = e[i];
		memcpy(e + lo, tmp + lo, (hi - lo) * sizeof(Entry));
	}
	n_values = lo_c == 0 ? count[0] : 0;
	if (n_values > 1)
		qsort(e + lo, n_values, sizeof(Entry), value_cmp);

	for (unsigned c = lo_c > 0 ? lo_c : 1; c <= hi_c && c < INDEX_CHILDMAX; c++) {
		if (!count[c])
			continue;
		if (first == INDEX_CHILDMAX)
			first = c;
		last = c;
		child_offs[c] = 0;
		r = write_node(e, tmp, start[c], start[c] + count[c], p + 1, false, out,
			       &child_offs[c]);
		if (r < 0)
			return r;
	}

	if (out->size > INDEX_NODE_MASK)
		return -EFBIG;
	offset = (uint32_t)out->size;

	if (p > pos) {
		r = kbuf_put(out, e[lo].key + pos, p - pos);
		if (r < 0 || (r = kbuf_putc(out, 0)) < 0)
			return r;
		offset |= INDEX_NODE_PREFIX;
	}

	if (first < INDEX_CHILDMAX) {
		r = kbuf_reserve(out, 2 + 4 * (last - first + 1));
		if (r < 0)
			return r;
		kbuf_putc(out, (char)first);
		kbuf_putc(out, (char)last);
		for (unsigned c = first; c <= last; c++)
			kbuf_put_be32(out, count[c] ? child_offs[c] : 0);
		offset |= INDEX_NODE_CHILDS;
	}

	if (n_values > 0) {
		r = kbuf_put_be32(out, (uint32_t)n_values);
		if (r < 0)
			return r;
		for (size_t i = lo; i < lo + n_values; i++) {
			r = kbuf_put_be32(out, e[i].priority);
			if (r < 0 ||
			    (r = kbuf_put(out, e[i].value, strlen(e[i].value) + 1)) < 0)
				return r;
		}
		offset |= INDEX_NODE_VALUES;
	}

	*ret_offset = offset;
	return 0;
}

int kmod_index_write(KmodIndex *idx, KBuf *out)
{
	size_t start = out->size;
	uint32_t root = 0;
	int r;

	_cleanup_free_ Entry *tmp = malloc((idx->n_entries + 1) * sizeof(Entry));

	if (!tmp)
		return -ENOMEM;
	r = kbuf_put_be32(out, KMOD_INDEX_MAGIC);
	if (r < 0 || (r = kbuf_put_be32(out, KMOD_INDEX_VERSION)) < 0 ||
	    (r = kbuf_put_be32(out, 0)) < 0)
		return r;

	/* offsets are relative to the start of the file: write into a view starting there */
	if (start == 0) {
		r = write_node(idx->entries, tmp, 0, idx->n_entries, 0, true, out, &root);
	} else {
		KBuf sub = {};

		r = kbuf_put(&sub, out->data + start, 12);
		if (r >= 0)
			r = write_node(idx->entries, tmp, 0, idx->n_entries, 0, true,
				       &sub, &root);
		if (r >= 0) {
			out->size = start;
			r = kbuf_put(out, sub.data, sub.size);
		}
		kbuf_done(&sub);
	}
	if (r < 0)
		return r;

	put_be32_at((unsigned char *)out->data + start + 8, root);
	return 0;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct Node {
	const char *prefix; /* "" when none */
	size_t prefix_len;
	unsigned first, last;
	const unsigned char *children; /* last - first + 1 big-endian offsets */
	uint32_t n_values;
	const unsigned char *values;
} Node;

static int node_parse(const unsigned char *d, size_t size, uint32_t off, Node *ret,
		      const char **ret_why)
{
	uint32_t pos = off & INDEX_NODE_MASK;
	Node n = { .prefix = "", .first = INDEX_CHILDMAX };
	const unsigned char *nul;

	if ((off & INDEX_NODE_FLAGS &
	     ~(INDEX_NODE_PREFIX | INDEX_NODE_VALUES | INDEX_NODE_CHILDS)) ||
	    pos < 12 || pos > size) {
		*ret_why = "node offset out of range";
		return -EBADMSG;
	}
	if (off & INDEX_NODE_PREFIX) {
		nul = memchr(d + pos, 0, size - pos);
		if (!nul) {
			*ret_why = "unterminated prefix";
			return -EBADMSG;
		}
		n.prefix = (const char *)d + pos;
		n.prefix_len = (size_t)(nul - d) - pos;
		pos = (uint32_t)(nul - d) + 1;
	}
	if (off & INDEX_NODE_CHILDS) {
		if (size - pos < 2) {
			*ret_why = "truncated child table";
			return -EBADMSG;
		}
		n.first = d[pos];
		n.last = d[pos + 1];
		pos += 2;
		if (n.first > n.last || n.last >= INDEX_CHILDMAX ||
		    size - pos < 4 * (size_t)(n.last - n.first + 1)) {
			*ret_why = "bad child table";
			return -EBADMSG;
		}
		n.children = d + pos;
		pos += 4 * (n.last - n.first + 1);
	}
	if (off & INDEX_NODE_VALUES) {
		if (size - pos < 4) {
			*ret_why = "truncated value count";
			return -EBADMSG;
		}
		n.n_values = get_be32(d + pos);
		pos += 4;
		n.values = d + pos;
	}
	*ret = n;
	return 0;
}

/* Walks the values of a node; returns 0 or -EBADMSG. */
static int values_walk(const unsigned char *d, size_t size, const Node *n,
		       void (*cb)(const char *value, uint32_t priority, void *userdata),
		       void *userdata, const char **ret_why)
{
	size_t pos = (size_t)(n->values - d);

	for (uint32_t i = 0; i < n->n_values; i++) {
		const unsigned char *nul;
		uint32_t prio;

		if (size - pos < 5) {
			*ret_why = "truncated value";
			return -EBADMSG;
		}
		prio = get_be32(d + pos);
		pos += 4;
		nul = memchr(d + pos, 0, size - pos);
		if (!nul) {
			*ret_why = "unterminated value";
			return -EBADMSG;
		}
		if (cb)
			cb((const char *)d + pos, prio, userdata);
		pos = (size_t)(nul - d) + 1;
	}
	return 0;
}

static int check_node(const unsigned char *d, size_t size, uint32_t off, uint8_t *seen,
		      unsigned depth, const char **ret_why)
{
	uint32_t pos = off & INDEX_NODE_MASK;
	Node n;
	int r;

	if (depth > 65536) {
		*ret_why = "trie too deep";
		return -EBADMSG;
	}
	r = node_parse(d, size, off, &n, ret_why);
	if (r < 0)
		return r;
	if (seen[pos / 8] & (1u << (pos % 8)))
		return 0;
	seen[pos / 8] |= (uint8_t)(1u << (pos % 8));

	if (n.values) {
		r = values_walk(d, size, &n, NULL, NULL, ret_why);
		if (r < 0)
			return r;
	}
	for (unsigned c = n.first; n.children && c <= n.last; c++) {
		uint32_t child = get_be32(n.children + 4 * (c - n.first));

		if (child == 0)
			continue;
		if ((child & INDEX_NODE_MASK) >= pos) {
			*ret_why = "child after its parent";
			return -EBADMSG;
		}
		r = check_node(d, size, child, seen, depth + 1, ret_why);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_header(const unsigned char *d, size_t size, const char **ret_why)
{
	if (size < 12) {
		*ret_why = "shorter than the header";
		return -EBADMSG;
	}
	if (get_be32(d) != KMOD_INDEX_MAGIC) {
		*ret_why = "bad magic";
		return -EBADMSG;
	}
	if (get_be32(d + 4) != KMOD_INDEX_VERSION) {
		*ret_why = "unsupported version";
		return -EBADMSG;
	}
	return 0;
}

int kmod_index_check(const void *data, size_t size, const char **ret_why)
{
	_cleanup_free_ uint8_t *seen = NULL;
	const char *why = NULL;
	int r;

	r = check_header(data, size, &why);
	if (r >= 0 && size > INDEX_NODE_MASK) {
		why = "file too large";
		r = -EBADMSG;
	}
	if (r >= 0) {
		seen = calloc(size / 8 + 1, 1);
		if (!seen)
			return -ENOMEM;
		r = check_node(data, size, get_be32((const unsigned char *)data + 8),
			       seen, 0, &why);
	}
	if (r < 0 && ret_why)
		*ret_why = why;
	return r;
}

int kmod_index_lookup(const void *data, size_t size, const char *key,
		      void (*cb)(const char *value, uint32_t priority, void *userdata),
		      void *userdata)
{
	const unsigned char *d = data;
	const char *why;
	uint32_t off;
	size_t i = 0;
	Node n;
	int r;

	r = check_header(d, size, &why);
	if (r < 0)
		return r;
	off = get_be32(d + 8);
	for (;;) {
		size_t pl;
		unsigned ch;
		uint32_t child;

		r = node_parse(d, size, off, &n, &why);
		if (r < 0)
			return r;
		pl = n.prefix_len;
		if (strncmp(key + i, n.prefix, pl) != 0)
			return 0;
		i += pl;
		if (key[i] == '\0') {
			if (!n.values)
				return 0;
			r = values_walk(d, size, &n, cb, userdata, &why);
			return r < 0 ? r : (int)n.n_values;
		}
		ch = (unsigned char)key[i];
		if (!n.children || ch < n.first || ch > n.last)
			return 0;
		child = get_be32(n.children + 4 * (ch - n.first));
		if (child == 0)
			return 0;
		if ((child & INDEX_NODE_MASK) >= (off & INDEX_NODE_MASK))
			return -EBADMSG;
		off = child;
		i++;
	}
}

int kmod_alias_normalize(const char *alias, char *buf)
{
	size_t i;

	for (i = 0; alias[i]; i++) {
		char c = alias[i];

		if (c == '-')
			buf[i] = '_';
		else if (c == ']')
			return -EINVAL;
		else if (c == '[') {
			while (alias[i] != ']' && alias[i] != '\0') {
				buf[i] = alias[i];
				i++;
			}
			if (alias[i] != ']')
				return -EINVAL;
			buf[i] = ']';
		} else
			buf[i] = c;
	}
	buf[i] = '\0';
	return 0;
}

/* ---- patching a serialised index ---- */

typedef struct PatchVal {
	uint32_t prio;
	uint64_t order; /* among equal priorities, smaller first */
	const char *value;
} PatchVal;

typedef struct Patch {
	const unsigned char *d;
	size_t size;
	const uint32_t *remap;
	size_t n_remap;
	Entry *adds; /* sorted by key */
	Entry *tmp;
	KBuf *out;
	char *key; /* the key up to the node being patched */
	size_t key_size;
	PatchVal *vals;
	size_t n_vals_alloc;
	bool verbatim; /* no remap: every priority stays as it is */
} Patch;

static int entry_key_cmp(const void *a, const void *b)
{
	const Entry *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int patch_val_cmp(const void *a, const void *b)
{
	const PatchVal *x = a, *y = b;

	if (x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int key_reserve(Patch *P, size_t n)
{
	char *k;

	if (n <= P->key_size)
		return 0;
	k = realloc(P->key, n * 2);
	if (!k)
		return -ENOMEM;
	P->key = k;
	P->key_size = n * 2;
	return 0;
}

/* Appends the values of node n that stay, with their new priorities, to P->vals from *k on;
 * order + i orders equal priorities (i: the value's place in the file). */
static int patch_old_values(Patch *P, const Node *n, uint64_t order, size_t *k)
{
	size_t at = (size_t)(n->values - P->d);

	for (uint32_t i = 0; i < n->n_values; i++) {
		const unsigned char *nul;
		uint32_t prio;

		if (P->size - at < 5)
			return -EBADMSG;
		prio = get_be32(P->d + at);
		at += 4;
		nul = memchr(P->d + at, 0, P->size - at);
		if (!nul || (P->remap && prio >= P->n_remap))
			return -EBADMSG;
		if (P->remap)
			prio = P->remap[prio];
		if (prio != KMOD_INDEX_DROP) {
			if (!GREEDY_REALLOC(P->vals, P->n_vals_alloc, *k + 1))
				return -ENOMEM;
			P->vals[(*k)++] = (PatchVal){ prio, order + i, (const char *)P->d + at };
		}
		at = (size_t)(nul - P->d) + 1;
	}
	return 0;
}

/* Adds the old entries below the node at off (its key so far: P->key[0..pos)) to idx, with
 * their new priorities; a node's values in reverse file order, so that the sort (later
 * insertion first among equal priorities) keeps the file order. */
static int patch_collect(Patch *P, uint32_t off, size_t pos, unsigned depth, KmodIndex *idx)
{
	const char *why;
	size_t pl, k = 0;
	Node n;
	int r;

	if (depth > 1024)
		return -EBADMSG;
	r = node_parse(P->d, P->size, off, &n, &why);
	if (r < 0)
		return r;
	pl = n.prefix_len;
	r = key_reserve(P, pos + pl + 2);
	if (r < 0)
		return r;
	memcpy(P->key + pos, n.prefix, pl);
	pos += pl;
	if (n.values) {
		r = patch_old_values(P, &n, 0, &k);
		if (r < 0)
			return r;
		P->key[pos] = 0;
		for (size_t i = k; i > 0; i--) {
			r = kmod_index_add(idx, P->key, P->vals[i - 1].value, P->vals[i - 1].prio);
			if (r < 0)
				return r;
		}
	}
	for (unsigned c = n.first; n.children && c <= n.last; c++) {
		uint32_t child = get_be32(n.children + 4 * (c - n.first));

		if (child == 0)
			continue;
		if ((child & INDEX_NODE_MASK) >= (off & INDEX_NODE_MASK))
			return -EBADMSG;
		P->key[pos] = (char)c;
		r = patch_collect(P, child, pos + 1, depth + 1, idx);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Writes entries e[0, n) as a subtree whose keys agree up to pos. */
static int patch_write_entries(Patch *P, Entry *e, size_t n, size_t pos, bool root,
			       uint32_t *ret)
{
	_cleanup_free_ Entry *tmp = malloc((n + 1) * sizeof(Entry));

	if (!tmp)
		return -ENOMEM;
	return write_node(e, tmp, 0, n, pos, root, P->out, ret);
}

/* Rebuilds the subtree at off (0: none) with the adds [lo, hi) from its entries. */
static int patch_rebuild(Patch *P, uint32_t off, size_t pos, size_t lo, size_t hi, bool root,
			 unsigned depth, uint32_t *ret)
{
	_cleanup_kmod_index_free_ KmodIndex *idx = kmod_index_new();
	int r;

	if (!idx)
		return -ENOMEM;
	if (off) {
		r = patch_collect(P, off, pos, depth, idx);
		if (r < 0)
			return r;
	}
	for (size_t i = lo; i < hi; i++) {
		r = kmod_index_add(idx, P->adds[i].key, P->adds[i].value, P->adds[i].priority);
		if (r < 0)
			return r;
	}
	if (idx->n_entries == 0 && !root) {
		*ret = 0;
		return 0;
	}
	return patch_write_entries(P, idx->entries, idx->n_entries, pos, root, ret);
}

/* Strings in an index are short: they are looked at a word at a time, the NUL found with the
 * bit trick that marks a word's zero bytes (the lowest mark is exact). Little-endian hosts
 * only; elsewhere memchr does it all. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define STRING_WORDS 1
#else
#define STRING_WORDS 0
#endif
#define STRING_WORDS_MAX 32

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline void store64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* The zero bytes of v, each marked by its high bit, exact up to the first one. */
static inline uint64_t zero_bytes(uint64_t v)
{
	return (v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull;
}

/* The place of the first zero byte in two words, with their zero_bytes() za and zb, one of
 * them not 0; without a branch on which. */
static inline size_t first_zero(uint64_t za, uint64_t zb)
{
	uint64_t second = za == 0;

	return 8 * second + (size_t)__builtin_ctzll(za | (zb & -second)) / 8;
}

/* The length of the string at s, which ends before end; -1 when it has no NUL. */
static inline ssize_t string_len(const unsigned char *s, const unsigned char *end)
{
	const unsigned char *nul;
	size_t l = 0;

	if (STRING_WORDS && end - s >= 16) {
		uint64_t za = zero_bytes(load64(s)), zb = zero_bytes(load64(s + 8));

		if (za | zb)
			return first_zero(za, zb);
		l = 16;
	}
	if (STRING_WORDS)
		for (; l < STRING_WORDS_MAX && end - s - l >= 8; l += 8) {
			uint64_t z = zero_bytes(load64(s + l));

			if (z)
				return (ssize_t)(l + (size_t)__builtin_ctzll(z) / 8);
		}
	nul = memchr(s + l, 0, (size_t)(end - s) - l);
	return nul ? nul - s : -1;
}

/* Copies the string at s, which ends before end, with its NUL to w, which has room for
 * end - s bytes (the words copied whole may write past the NUL); returns the bytes copied,
 * 0 when the string has no NUL. Long strings are left to memchr and memcpy. */
static inline size_t string_copy(unsigned char *w, const unsigned char *s,
				 const unsigned char *end)
{
	const unsigned char *nul;
	size_t l = 0;

	if (STRING_WORDS && end - s >= 16) {
		uint64_t a = load64(s), b = load64(s + 8), za = zero_bytes(a), zb = zero_bytes(b);

		store64(w, a);
		store64(w + 8, b);
		if (za | zb)
			return first_zero(za, zb) + 1;
		l = 16;
	}
	if (STRING_WORDS)
		for (; l < STRING_WORDS_MAX && end - s - l >= 8; l += 8) {
			uint64_t v = load64(s + l), z = zero_bytes(v);

			store64(w + l, v);
			if (z)
				return l + (size_t)__builtin_ctzll(z) / 8 + 1;
		}
	nul = memchr(s + l, 0, (size_t)(end - s) - l);
	if (!nul)
		return 0;
	memcpy(w + l, s + l, (size_t)(nul - s) + 1 - l);
	return (size_t)(nul - s) + 1;
}

/* Copies n bytes from s, which has end - s bytes, to w, which has as much room. */
static inline void bytes_copy(unsigned char *w, const unsigned char *s, size_t n,
			      const unsigned char *end)
{
	if (STRING_WORDS && n <= 24 && end - s >= 24) {
		store64(w, load64(s));
		store64(w + 8, load64(s + 8));
		store64(w + 16, load64(s + 16));
	} else
		memcpy(w, s, n);
}

/* The subtree at off, below which nothing is added: the same nodes with their new offsets
 * and priorities, written without the key and the sorting patch_node needs. -EAGAIN (and
 * nothing written) where the shape must change after all (a node left without values and
 * with one child or none) or where the new priorities reorder a node's values: patch_node
 * does those. Most of a patch is here: an update touches a few paths of the trie.
 * The node is read as node_parse() does, with the same checks. A node is written no longer
 * than it was, so the bytes from its old start to the end of the file are room enough for
 * it, words copied whole past its strings included. */
static int copy_node(Patch *P, uint32_t off, unsigned depth, uint32_t *ret)
{
	/* the new child table, big-endian, slots first_kid..last_kid of the old one */
	unsigned char tab[4 * INDEX_CHILDMAX];
	const unsigned char *d = P->d, *end = d + P->size, *p, *prefix = NULL, *values = NULL;
	uint32_t pos = off & INDEX_NODE_MASK, n_values = 0, n_kept = 0, offset, prev_prio = 0;
	size_t begin = P->out->size, start, pl = 0;
	unsigned n_kids = 0, first_kid = 0, last_kid = 0, first = 0;
	unsigned char *w, *count;
	int r;

	if (depth > 1024)
		return -EBADMSG;
	if ((off & INDEX_NODE_FLAGS &
	     ~(INDEX_NODE_PREFIX | INDEX_NODE_VALUES | INDEX_NODE_CHILDS)) ||
	    pos < 12 || pos > P->size)
		return -EBADMSG;
	p = d + pos;
	if (off & INDEX_NODE_PREFIX) {
		ssize_t l = string_len(p, end);

		if (l < 0)
			return -EBADMSG;
		/* an empty prefix is read past and not written */
		prefix = p;
		pl = l > 0 ? (size_t)l + 1 : 0;
		p += l + 1;
	}
	if (off & INDEX_NODE_CHILDS) {
		unsigned last, all;

		if (end - p < 2)
			return -EBADMSG;
		first = p[0];
		last = p[1];
		p += 2;
		all = last - first + 1;
		if (first > last || last >= INDEX_CHILDMAX || (size_t)(end - p) < 4 * (size_t)all)
			return -EBADMSG;
		for (unsigned i = 0; i < all; i++, p += 4) {
			uint32_t old = get_be32(p), nw;

			if (old == 0) {
				memset(tab + 4 * i, 0, 4);
				continue;
			}
			if ((old & INDEX_NODE_MASK) >= pos)
				return -EBADMSG;
			r = copy_node(P, old, depth + 1, &nw);
			if (r < 0) {
				P->out->size = begin;
				return r;
			}
			put_be32_at(tab + 4 * i, nw);
			if (n_kids++ == 0)
				first_kid = i;
			last_kid = i;
		}
	}
	if (off & INDEX_NODE_VALUES) {
		if (end - p < 4)
			return -EBADMSG;
		n_values = get_be32(p);
		values = p + 4;
	}

	if (P->out->size + (P->size - pos) + 1 > P->out->allocated) {
		r = kbuf_reserve(P->out, P->size - pos);
		if (r < 0)
			return r;
	}
	start = P->out->size;
	if (start > INDEX_NODE_MASK)
		return -EFBIG;
	offset = (uint32_t)start;
	w = (unsigned char *)P->out->data + start;
	if (pl > 0) {
		bytes_copy(w, prefix, pl, end);
		w += pl;
		offset |= INDEX_NODE_PREFIX;
	}
	if (n_kids > 0) {
		size_t span = 4 * (size_t)(last_kid - first_kid + 1);

		*w++ = (unsigned char)(first + first_kid);
		*w++ = (unsigned char)(first + last_kid);
		memcpy(w, tab + 4 * first_kid, span);
		w += span;
		offset |= INDEX_NODE_CHILDS;
	}
	if (values) {
		const unsigned char *v = values;

		count = w;
		w += 4;
		for (uint32_t i = 0; i < n_values; i++) {
			uint32_t prio, to;
			size_t l;

			if (end - v < 5)
				return -EBADMSG;
			prio = get_be32(v);
			if (prio >= P->n_remap)
				return -EBADMSG;
			/* copied before it is known to stay: a value dropped is written over */
			l = string_copy(w + 4, v + 4, end);
			if (l == 0)
				return -EBADMSG;
			to = P->remap[prio];
			if (to != KMOD_INDEX_DROP) {
				if (n_kept > 0 && to < prev_prio) {
					/* the new priorities reorder the values */
					P->out->size = begin;
					return -EAGAIN;
				}
				prev_prio = to;
				n_kept++;
				put_be32_at(w, to);
				w += 4 + l;
			}
			v += 4 + l;
		}
		if (n_kept > 0) {
			put_be32_at(count, n_kept);
			offset |= INDEX_NODE_VALUES;
		} else
			w = count;
	}
	if (depth > 0 && n_kept == 0 && n_kids <= 1) {
		P->out->size = begin;
		return -EAGAIN;
	}
	P->out->size = (size_t)((char *)w - P->out->data);
	P->out->data[P->out->size] = 0;
	*ret = offset;
	return 0;
}

/* Moves the child offsets of the subtree copied to off in the output by delta, the distance
 * it moved; a leaf (no child flag) has none. */
static int move_children(Patch *P, uint32_t off, int64_t delta, unsigned depth)
{
	const unsigned char *d = (const unsigned char *)P->out->data;
	const char *why;
	Node n;
	int r;

	if (depth > 1024)
		return -EBADMSG;
	r = node_parse(d, P->out->size, off, &n, &why);
	if (r < 0)
		return r;
	for (unsigned c = n.first; n.children && c <= n.last; c++) {
		unsigned char *slot = (unsigned char *)n.children + 4 * (c - n.first);
		uint32_t child = get_be32(slot);

		if (child == 0)
			continue;
		if ((child & INDEX_NODE_MASK) >= (off & INDEX_NODE_MASK) - (uint32_t)delta)
			return -EBADMSG;
		child = (uint32_t)((int64_t)child + delta);
		put_be32_at(slot, child);
		if (child & INDEX_NODE_CHILDS) {
			r = move_children(P, child, delta, depth + 1);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* The subtree at off, below which nothing is added, when every priority stays: the same bytes.
 * The trie is written children first, so the subtree spans from its leftmost leaf to the end
 * of its root; it is copied whole and its child offsets moved by the distance it moved. */
static int copy_verbatim(Patch *P, uint32_t off, uint32_t *ret)
{
	size_t begin, end, len;
	uint32_t at = off;
	int64_t delta;
	const char *why;
	Node root, n;
	int r;

	r = node_parse(P->d, P->size, off, &root, &why);
	if (r < 0)
		return r;
	if (root.values) {
		const unsigned char *v = root.values, *e = P->d + P->size, *nul;

		for (uint32_t i = 0; i < root.n_values; i++, v = nul + 1)
			if (e - v < 5 || !(nul = memchr(v + 4, 0, (size_t)(e - v) - 4)))
				return -EBADMSG;
		end = (size_t)(v - P->d);
	} else if (root.children)
		end = (size_t)(root.children - P->d) + 4 * (size_t)(root.last - root.first + 1);
	else
		end = (size_t)(off & INDEX_NODE_MASK) + (root.prefix_len ? root.prefix_len + 1 : 0);
	for (unsigned depth = 0, found = 1; found; depth++) {
		if (depth > 1024)
			return -EBADMSG;
		n = root;
		if (at != off) {
			r = node_parse(P->d, P->size, at, &n, &why);
			if (r < 0)
				return r;
		}
		found = 0;
		for (unsigned c = n.first; n.children && c <= n.last && !found; c++) {
			uint32_t child = get_be32(n.children + 4 * (c - n.first));

			if (child == 0)
				continue;
			if ((child & INDEX_NODE_MASK) >= (at & INDEX_NODE_MASK))
				return -EBADMSG;
			at = child;
			found = 1;
		}
	}
	begin = at & INDEX_NODE_MASK;
	if (begin > (off & INDEX_NODE_MASK) || end > P->size || end <= begin)
		return -EBADMSG;
	len = end - begin;
	delta = (int64_t)P->out->size - (int64_t)begin;
	if ((int64_t)end + delta > INDEX_NODE_MASK)
		return -EFBIG;
	r = kbuf_reserve(P->out, len);
	if (r < 0)
		return r;
	memcpy(P->out->data + P->out->size, P->d + begin, len);
	P->out->size += len;
	P->out->data[P->out->size] = 0;
	*ret = (uint32_t)((int64_t)off + delta);
	if (delta != 0 && (off & INDEX_NODE_CHILDS)) {
		r = move_children(P, *ret, delta, 0);
		if (r < 0) {
			P->out->size -= len;
			return r;
		}
	}
	return 0;
}

/* Writes the new version of the node at off, whose key so far is P->key[0..pos), with the
 * adds [lo, hi) that fall below it; *ret is its new offset, 0 when it is gone. */
static int patch_node(Patch *P, uint32_t off, size_t pos, size_t lo, size_t hi, bool root,
		      unsigned depth, uint32_t *ret)
{
	uint32_t child_offs[INDEX_CHILDMAX];
	size_t start = P->out->size, pl, q, v_hi = lo, n_vals = 0, n_children = 0;
	unsigned first = INDEX_CHILDMAX, last = 0, c_lo, c_hi;
	const char *why;
	uint32_t offset;
	Node n;
	int r;

	if (depth > 1024)
		return -EBADMSG;
	r = node_parse(P->d, P->size, off, &n, &why);
	if (r < 0)
		return r;
	pl = n.prefix_len;
	q = pos + pl;
	r = key_reserve(P, q + 2);
	if (r < 0)
		return r;
	memcpy(P->key + pos, n.prefix, pl);

	/* an add that ends or turns inside the prefix splits this node */
	for (size_t i = lo; i < hi; i++)
		if (strncmp(P->adds[i].key + pos, n.prefix, pl) != 0)
			return patch_rebuild(P, off, pos, lo, hi, root, depth, ret);
	while (v_hi < hi && P->adds[v_hi].key[q] == 0)
		v_hi++;

	/* children, old and new, in character order */
	c_lo = n.children ? n.first : INDEX_CHILDMAX;
	c_hi = n.children ? n.last : 0;
	if (v_hi < hi) {
		unsigned a = (unsigned char)P->adds[v_hi].key[q];
		unsigned b = (unsigned char)P->adds[hi - 1].key[q];

		if (a >= INDEX_CHILDMAX || b >= INDEX_CHILDMAX)
			return -EINVAL;
		c_lo = a < c_lo ? a : c_lo;
		c_hi = b > c_hi ? b : c_hi;
	}
	for (size_t i = v_hi, c = c_lo; c_lo <= c_hi && c <= c_hi; c++) {
		uint32_t old = 0, nw = 0;

		r = 0;
		size_t j = i;

		while (j < hi && (unsigned char)P->adds[j].key[q] == c)
			j++;
		if (n.children && c >= n.first && c <= n.last) {
			old = get_be32(n.children + 4 * (c - n.first));
			if (old && (old & INDEX_NODE_MASK) >= (off & INDEX_NODE_MASK))
				return -EBADMSG;
		}
		P->key[q] = (char)c;
		if (old && j == i && P->verbatim)
			r = copy_verbatim(P, old, &nw);
		else if (old && j == i) {
			r = copy_node(P, old, depth + 1, &nw);
			if (r == -EAGAIN)
				r = patch_node(P, old, q + 1, i, j, false, depth + 1, &nw);
		} else if (old)
			r = patch_node(P, old, q + 1, i, j, false, depth + 1, &nw);
		else if (j > i)
			r = patch_write_entries(P, P->adds + i, j - i, q + 1, false, &nw);
		if (r < 0)
			return r;
		i = j;
		child_offs[c] = nw;
		if (nw) {
			if (first == INDEX_CHILDMAX)
				first = (unsigned)c;
			last = (unsigned)c;
			n_children++;
		}
	}

	/* the values: the old ones kept, with their new priorities, and the added ones */
	if (n.values) {
		r = patch_old_values(P, &n, 1ull << 32, &n_vals);
		if (r < 0)
			return r;
	}
	for (size_t i = lo; i < v_hi; i++) {
		if (!GREEDY_REALLOC(P->vals, P->n_vals_alloc, n_vals + 1))
			return -ENOMEM;
		P->vals[n_vals++] = (PatchVal){ P->adds[i].priority,
						UINT32_MAX - P->adds[i].seq, P->adds[i].value };
	}

	if (!root && n_vals == 0 && n_children <= 1) {
		/* gone, or a chain that must merge into one node */
		P->out->size = start;
		if (n_children == 0) {
			*ret = 0;
			return 0;
		}
		return patch_rebuild(P, off, pos, lo, hi, root, depth, ret);
	}
	if (n_vals > 1)
		qsort(P->vals, n_vals, sizeof(PatchVal), patch_val_cmp);

	{
		size_t need = pl + 1 + 2 + 4 + 4 * (size_t)(n_children ? last - first + 1 : 0);
		unsigned char *w;

		for (size_t i = 0; i < n_vals; i++)
			need += 5 + strlen(P->vals[i].value);
		r = kbuf_reserve(P->out, need);
		if (r < 0)
			return r;
		if (P->out->size > INDEX_NODE_MASK)
			return -EFBIG;
		offset = (uint32_t)P->out->size;
		w = (unsigned char *)P->out->data + P->out->size;
		if (pl > 0) {
			memcpy(w, n.prefix, pl + 1);
			w += pl + 1;
			offset |= INDEX_NODE_PREFIX;
		}
		if (n_children > 0) {
			*w++ = (unsigned char)first;
			*w++ = (unsigned char)last;
			for (unsigned c = first; c <= last; c++) {
				put_be32_at(w, child_offs[c]);
				w += 4;
			}
			offset |= INDEX_NODE_CHILDS;
		}
		if (n_vals > 0) {
			put_be32_at(w, (uint32_t)n_vals);
			w += 4;
			for (size_t i = 0; i < n_vals; i++) {
				size_t l = strlen(P->vals[i].value) + 1;

				put_be32_at(w, P->vals[i].prio);
				memcpy(w + 4, P->vals[i].value, l);
				w += 4 + l;
			}
			offset |= INDEX_NODE_VALUES;
		}
		P->out->size = (size_t)((char *)w - P->out->data);
		P->out->data[P->out->size] = 0;
	}
	*ret = offset;
	return 0;
}

int kmod_index_patch(const void *old, size_t old_size, const uint32_t *remap, size_t n_remap,
		     KmodIndex *add, KBuf *out)
{
	Patch P = {
		.d = old,
		.size = old_size,
		.remap = remap,
		.n_remap = n_remap,
		.out = out,
	};
	const char *why;
	uint32_t root = 0;
	int r;

	if (out->size != 0)
		return -EINVAL;
	r = check_header(old, old_size, &why);
	if (r < 0)
		return r;
	if (old_size > INDEX_NODE_MASK)
		return -EBADMSG;
	P.verbatim = !remap;
	if (add && add->n_entries > 0) {
		P.adds = add->entries;
		qsort(P.adds, add->n_entries, sizeof(Entry), entry_key_cmp);
	}
	r = kbuf_reserve(out, old_size + 4096);
	if (r >= 0)
		r = kbuf_put_be32(out, KMOD_INDEX_MAGIC);
	if (r >= 0)
		r = kbuf_put_be32(out, KMOD_INDEX_VERSION);
	if (r >= 0)
		r = kbuf_put_be32(out, 0);
	if (r >= 0)
		r = patch_node(&P, get_be32((const unsigned char *)old + 8), 0, 0,
			       add ? add->n_entries : 0, true, 0, &root);
	free(P.key);
	free(P.vals);
	if (r < 0) {
		out->size = 0;
		return r;
	}
	put_be32_at((unsigned char *)out->data + 8, root);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "hashmap.h"

typedef struct Entry {
	struct Entry *next;
	char *key;
	void *value;
	uint32_t hash;
} Entry;

struct Hashmap {
	Entry **buckets;
	size_t n_buckets;
	size_t n_entries;
	free_func_t free_key;
	free_func_t free_value;
};

uint32_t string_hash(const char *s)
{
	/* FNV-1a */
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

Hashmap *hashmap_new(free_func_t free_key, free_func_t free_value)
{
	Hashmap *h = calloc(1, sizeof(Hashmap));

	if (!h)
		return NULL;
	h->n_buckets = 64;
	h->buckets = calloc(h->n_buckets, sizeof(Entry *));
	if (!h->buckets) {
		free(h);
		return NULL;
	}
	h->free_key = free_key;
	h->free_value = free_value;
	return h;
}

Hashmap *hashmap_free(Hashmap *h)
{
	if (!h)
		return NULL;
	for (size_t b = 0; b < h->n_buckets; b++) {
		Entry *e = h->buckets[b];
		while (e) {
			Entry *n = e->next;
			if (h->free_key)
				h->free_key(e->key);
			if (h->free_value)
				h->free_value(e->value);
			free(e);
			e = n;
		}
	}
	free(h->buckets);
	free(h);
	return NULL;
}

static Entry *find(const Hashmap *h, const char *key, uint32_t hash)
{
	for (Entry *e = h->buckets[hash & (h->n_buckets - 1)]; e; e = e->next)
		if (e->hash == hash && streq(e->key, key))
			return e;
	return NULL;
}

static int grow(Hashmap *h)
{
	size_t n = h->n_buckets * 4;
	Entry **b = calloc(n, sizeof(Entry *));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < h->n_buckets; i++) {
		Entry *e = h->buckets[i];
		while (e) {
			Entry *next = e->next;
			size_t k = e->hash & (n - 1);
			e->next = b[k];
			b[k] = e;
			e = next;
		}
	}
	free(h->buckets);
	h->buckets = b;
	h->n_buckets = n;
	return 0;
}

int hashmap_put(Hashmap *h, const char *key, void *value)
{
	uint32_t hash = string_hash(key);
	Entry *e;
	size_t k;

	if (find(h, key, hash))
		return -EEXIST;
	if (h->n_entries >= h->n_buckets && grow(h) < 0)
		return -ENOMEM;
	e = malloc(sizeof(Entry));
	if (!e)
		return -ENOMEM;
	k = hash & (h->n_buckets - 1);
	e->key = (char *)key;
	e->value = value;
	e->hash = hash;
	e->next = h->buckets[k];
	h->buckets[k] = e;
	h->n_entries++;
	return 0;
}

int hashmap_replace(Hashmap *h, const char *key, void *value)
{
	Entry *e = find(h, key, string_hash(key));

	if (!e)
		return hashmap_put(h, key, value);
	if (h->free_value && e->value != value)
		h->free_value(e->value);
	if (h->free_key && e->key != key)
		h->free_key(e->key);
	e->key = (char *)key;
	e->value = value;
	return 0;
}

void *hashmap_get(const Hashmap *h, const char *key)
{
	Entry *e;

	if (!h)
		return NULL;
	e = find(h, key, string_hash(key));
	return e ? e->value : NULL;
}

bool hashmap_contains(const Hashmap *h, const char *key)
{
	return h && find(h, key, string_hash(key));
}

void *hashmap_remove(Hashmap *h, const char *key)
{
	uint32_t hash;
	Entry **p;

	if (!h)
		return NULL;
	hash = string_hash(key);
	for (p = &h->buckets[hash & (h->n_buckets - 1)]; *p; p = &(*p)->next) {
		Entry *e = *p;
		void *v;

		if (e->hash != hash || !streq(e->key, key))
			continue;
		*p = e->next;
		v = e->value;
		if (h->free_key)
			h->free_key(e->key);
		free(e);
		h->n_entries--;
		return v;
	}
	return NULL;
}

size_t hashmap_size(const Hashmap *h)
{
	return h ? h->n_entries : 0;
}

bool hashmap_iterate(const Hashmap *h, HashmapIter *i, const char **ret_key, void **ret_value)
{
	Entry *e = i->entry;

	if (!h)
		return false;
	if (e)
		e = e->next;
	while (!e) {
		if (i->bucket >= h->n_buckets)
			return false;
		e = h->buckets[i->bucket++];
	}
	i->entry = e;
	if (ret_key)
		*ret_key = e->key;
	if (ret_value)
		*ret_value = e->value;
	return true;
}

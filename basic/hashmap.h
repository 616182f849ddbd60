/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "macros.h"

/* A string-keyed hash map (separate chaining). Keys and values are not owned by the map
 * unless destructors are given at creation. Iteration order is unspecified. */
typedef struct Hashmap Hashmap;
typedef void (*free_func_t)(void *p);

Hashmap *hashmap_new(free_func_t free_key, free_func_t free_value);
Hashmap *hashmap_free(Hashmap *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Hashmap *, hashmap_free);
#define _cleanup_hashmap_free_ _cleanup_(hashmap_freep)

/* -EEXIST if the key is present; the map does not take the key/value then. */
int hashmap_put(Hashmap *h, const char *key, void *value);
/* Replaces an existing value (freeing the old key and value when the map owns them). */
int hashmap_replace(Hashmap *h, const char *key, void *value);
void *hashmap_get(const Hashmap *h, const char *key);
bool hashmap_contains(const Hashmap *h, const char *key);
/* Removes the entry and returns its value; the key is freed when owned, the value is not. */
void *hashmap_remove(Hashmap *h, const char *key);
size_t hashmap_size(const Hashmap *h);

typedef struct HashmapIter {
	size_t bucket;
	void *entry;
} HashmapIter;
#define HASHMAP_ITER_INIT ((HashmapIter){ 0, NULL })
bool hashmap_iterate(const Hashmap *h, HashmapIter *i, const char **ret_key, void **ret_value);

#define HASHMAP_FOREACH_KEY(v, k, h)                                             \
	for (HashmapIter _i_ = HASHMAP_ITER_INIT;                                \
	     hashmap_iterate((h), &_i_, &(k), (void **)&(v));)

uint32_t string_hash(const char *s);

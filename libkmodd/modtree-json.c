/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>

#include "modtree-json.h"
#include "strv.h"

void crc_format(uint64_t crc, char buf[static 19])
{
	snprintf(buf, 19, "0x%08" PRIx64, crc);
}

static struct json_object *string_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static int add(struct json_object *o, const char *key, struct json_object *v, bool may_be_null)
{
	if (!v && !may_be_null)
		return -ENOMEM;
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *strv_to_json(char *const *l)
{
	struct json_object *a = json_object_new_array();

	if (!a)
		return NULL;
	STRV_FOREACH(s, l) {
		struct json_object *v = json_object_new_string(*s);
		if (!v || json_object_array_add(a, v) < 0) {
			json_object_put(v);
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

static struct json_object *symbols_to_json(const SymbolCrc *s, size_t n, const Symvers *sv)
{
	struct json_object *a = json_object_new_array_ext((int)n);

	if (!a)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		_cleanup_json_put_ struct json_object *o = json_object_new_object();
		char crc[19];

		if (!o)
			goto fail;
		crc_format(s[i].crc, crc);
		if (add(o, "symbol", json_object_new_string(s[i].symbol), false) < 0 ||
		    add(o, "crc", json_object_new_string(crc), false) < 0)
			goto fail;
		if (sv) {
			const SymversEntry *e = symvers_get(sv, s[i].symbol);
			if (add(o, "provider", e ? json_object_new_string(e->module) : NULL, !e) < 0)
				goto fail;
			if (e) {
				crc_format(e->crc, crc);
				if (add(o, "kernel_crc", json_object_new_string(crc), false) < 0)
					goto fail;
			}
		}
		if (json_object_array_add(a, o) < 0)
			goto fail;
		TAKE_PTR(o);
	}
	return a;
fail:
	json_object_put(a);
	return NULL;
}

int module_to_json(const Module *m, const Symvers *symvers, ModuleJsonFlags flags,
		   struct json_object **ret)
{
	_cleanup_json_put_ struct json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	if (add(o, "name", json_object_new_string(m->name), false) < 0 ||
	    add(o, "path", json_object_new_string(m->path), false) < 0 ||
	    add(o, "aliases", strv_to_json(m->aliases), false) < 0 ||
	    add(o, "depends", strv_to_json(m->depends), false) < 0 ||
	    add(o, "softdeps", strv_to_json(m->softdeps), false) < 0 ||
	    add(o, "firmware", strv_to_json(m->firmware), false) < 0 ||
	    add(o, "vermagic", string_or_null(m->vermagic), !m->vermagic) < 0 ||
	    add(o, "license", string_or_null(m->license), !m->license) < 0 ||
	    add(o, "description", string_or_null(m->description), !m->description) < 0 ||
	    add(o, "intree", json_object_new_boolean(m->intree), false) < 0 ||
	    add(o, "supported", string_or_null(m->supported), !m->supported) < 0 ||
	    add(o, "signer", string_or_null(m->signer), !m->signer) < 0 ||
	    add(o, "sig_key", string_or_null(m->sig_key), !m->sig_key) < 0 ||
	    add(o, "sig_hashalgo", string_or_null(m->sig_hashalgo), !m->sig_hashalgo) < 0 ||
	    add(o, "exports", symbols_to_json(m->exports, m->n_exports, NULL), false) < 0 ||
	    add(o, "requires", symbols_to_json(m->requires, m->n_requires, symvers), false) < 0)
		return -ENOMEM;

	if (flags & MODULE_JSON_INFO) {
		struct json_object *a = json_object_new_array();

		if (add(o, "info", a, false) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < m->n_info; i++) {
			struct json_object *p = json_object_new_object();
			if (!p || json_object_array_add(a, p) < 0) {
				json_object_put(p);
				return -ENOMEM;
			}
			if (add(p, "key", json_object_new_string(m->info[i].key), false) < 0 ||
			    add(p, "value", json_object_new_string(m->info[i].value), false) < 0)
				return -ENOMEM;
		}
	}

	*ret = TAKE_PTR(o);
	return 0;
}

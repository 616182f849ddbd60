/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Kernel module ELF reader with libkmod's semantics for the lists it returns:
 *  - a section is the first one (index >= 1) of that name whose offset + size fit in the
 *    file and whose name offset is inside the section name table;
 *  - string sections (.modinfo, __ksymtab_strings) drop leading NULs, give nothing when at
 *    most one byte is left, then yield the non-empty NUL-separated strings, the last one
 *    ending at the section end if it is not terminated;
 *  - __versions entries are 64 bytes: a 4 (ELF32) or 8 (ELF64) byte CRC and the name; a
 *    section whose size is not a multiple of 64 counts as absent; a name is looked up as
 *    the first entry of that name. */
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "macros.h"
#include "modelf.h"

#define MODVERSION_SIZE 64
#ifndef STT_REGISTER
#define STT_REGISTER 13
#endif

typedef struct Section {
	uint64_t offset;
	uint64_t size;
	bool found;
} Section;

struct ModElf {
	const uint8_t *map;
	uint64_t size;
	bool is64;
	bool swap; /* file byte order differs from ours */
	uint16_t machine;
	Section modinfo, strtab, symtab, versions, ksymtab_strings;
};

static uint16_t rd16(const ModElf *e, uint64_t off)
{
	uint16_t v;

	memcpy(&v, e->map + off, sizeof(v));
	return e->swap ? __builtin_bswap16(v) : v;
}

static uint32_t rd32(const ModElf *e, uint64_t off)
{
	uint32_t v;

	memcpy(&v, e->map + off, sizeof(v));
	return e->swap ? __builtin_bswap32(v) : v;
}

static uint64_t rd64(const ModElf *e, uint64_t off)
{
	uint64_t v;

	memcpy(&v, e->map + off, sizeof(v));
	return e->swap ? __builtin_bswap64(v) : v;
}

/* A field of a 32- or 64-bit structure at base. */
#define RD(e, base, type32, type64, field)                                              \
	((e)->is64 ? rd_sized(e, (base) + offsetof(type64, field),                      \
			      sizeof(((type64 *)NULL)->field))                          \
		   : rd_sized(e, (base) + offsetof(type32, field),                      \
			      sizeof(((type32 *)NULL)->field)))

static uint64_t rd_sized(const ModElf *e, uint64_t off, size_t size)
{
	switch (size) {
	case 1:
		return e->map[off];
	case 2:
		return rd16(e, off);
	case 4:
		return rd32(e, off);
	default:
		return rd64(e, off);
	}
}

static bool is_compressed(const uint8_t *p, uint64_t size)
{
	static const uint8_t zstd[] = { 0x28, 0xb5, 0x2f, 0xfd };
	static const uint8_t xz[] = { 0xfd, '7', 'z', 'X', 'Z', 0 };
	static const uint8_t gzip[] = { 0x1f, 0x8b };

	return (size >= sizeof(zstd) && memcmp(p, zstd, sizeof(zstd)) == 0) ||
	       (size >= sizeof(xz) && memcmp(p, xz, sizeof(xz)) == 0) ||
	       (size >= sizeof(gzip) && memcmp(p, gzip, sizeof(gzip)) == 0);
}

static int parse(ModElf *e)
{
	const uint8_t *p = e->map;
	uint64_t shoff, shentsize, shnum, shstrndx, names_off, names_size, end;
	size_t ehdr_size, shdr_size;

	if (e->size <= EI_NIDENT || memcmp(p, ELFMAG, SELFMAG) != 0)
		return -ENOEXEC;
	switch (p[EI_CLASS]) {
	case ELFCLASS32:
		e->is64 = false;
		ehdr_size = sizeof(Elf32_Ehdr);
		shdr_size = sizeof(Elf32_Shdr);
		break;
	case ELFCLASS64:
		e->is64 = true;
		ehdr_size = sizeof(Elf64_Ehdr);
		shdr_size = sizeof(Elf64_Shdr);
		break;
	default:
		return -ENOEXEC;
	}
	switch (p[EI_DATA]) {
	case ELFDATA2LSB:
		e->swap = __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__;
		break;
	case ELFDATA2MSB:
		e->swap = __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__;
		break;
	default:
		return -ENOEXEC;
	}
	if (e->size <= ehdr_size)
		return -ENOEXEC;

	e->machine = RD(e, 0, Elf32_Ehdr, Elf64_Ehdr, e_machine);
	shoff = RD(e, 0, Elf32_Ehdr, Elf64_Ehdr, e_shoff);
	shentsize = RD(e, 0, Elf32_Ehdr, Elf64_Ehdr, e_shentsize);
	shnum = RD(e, 0, Elf32_Ehdr, Elf64_Ehdr, e_shnum);
	shstrndx = RD(e, 0, Elf32_Ehdr, Elf64_Ehdr, e_shstrndx);

	/* shnum * shdr_size < 2^23: no overflow before the addition */
	if (shentsize != shdr_size || __builtin_add_overflow(shoff, shnum * shdr_size, &end) ||
	    end > e->size)
		return -ENOEXEC;

	/* The section name table, then one pass over all sections for the ones we use. */
	if (shstrndx == SHN_UNDEF || shstrndx >= shnum)
		return -ENOEXEC;
	names_off = RD(e, shoff + shstrndx * shdr_size, Elf32_Shdr, Elf64_Shdr, sh_offset);
	names_size = RD(e, shoff + shstrndx * shdr_size, Elf32_Shdr, Elf64_Shdr, sh_size);
	if (__builtin_add_overflow(names_off, names_size, &end) || end > e->size ||
	    names_size == 0 || p[names_off + names_size - 1] != '\0')
		return -ENOEXEC;

	for (uint64_t i = 1; i < shnum; i++) {
		uint64_t h = shoff + i * shdr_size, off, size, name;
		const char *n;
		Section *s;

		off = RD(e, h, Elf32_Shdr, Elf64_Shdr, sh_offset);
		size = RD(e, h, Elf32_Shdr, Elf64_Shdr, sh_size);
		name = RD(e, h, Elf32_Shdr, Elf64_Shdr, sh_name);
		if (__builtin_add_overflow(off, size, &end) || end > e->size)
			continue;
		if (name >= names_size)
			continue;
		n = (const char *)p + names_off + name;

		if (streq(n, ".modinfo"))
			s = &e->modinfo;
		else if (streq(n, ".strtab"))
			s = &e->strtab;
		else if (streq(n, ".symtab"))
			s = &e->symtab;
		else if (streq(n, "__versions"))
			s = &e->versions;
		else if (streq(n, "__ksymtab_strings"))
			s = &e->ksymtab_strings;
		else
			continue;
		if (!s->found)
			*s = (Section){ .offset = off, .size = size, .found = true };
	}

	if (!e->modinfo.found)
		return -ENOEXEC;
	return 0;
}

int modelf_open(int dirfd, const char *path, ModElf **ret)
{
	_cleanup_close_ int fd = -EBADF;
	ModElf *e;
	struct stat st;
	void *map;
	int r;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode) || st.st_size <= 0)
		return -ENOEXEC;
	if ((uint64_t)st.st_size > SIZE_MAX)
		return -EFBIG;

	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return negative_errno();

	e = calloc(1, sizeof(*e));
	if (!e) {
		munmap(map, st.st_size);
		return -ENOMEM;
	}
	e->map = map;
	e->size = st.st_size;

	if (is_compressed(e->map, e->size))
		r = -EMEDIUMTYPE;
	else
		r = parse(e);
	if (r < 0) {
		modelf_close(e);
		return r;
	}
	*ret = e;
	return 0;
}

void modelf_close(ModElf *e)
{
	if (!e)
		return;
	munmap((void *)e->map, e->size);
	free(e);
}

/* Calls fn for each string of a string section; a string not terminated in the section
 * is passed as a NUL-terminated copy. */
static int each_string(const ModElf *e, const Section *s,
		       int (*fn)(const char *str, size_t len, void *u), void *u)
{
	const char *p = (const char *)e->map + s->offset;
	uint64_t n = s->size, i = 0;
	int count = 0, r;

	while (n > 1 && *p == '\0') {
		p++;
		n--;
	}
	if (n <= 1)
		return 0;

	while (i < n) {
		const char *str = p + i;
		const char *nul = memchr(str, '\0', n - i);

		if (nul) {
			r = fn(str, nul - str, u);
			i = nul - p;
		} else {
			_cleanup_free_ char *copy = strndup(str, n - i);

			if (!copy)
				return -ENOMEM;
			r = fn(copy, n - i, u);
			i = n;
		}
		if (r < 0)
			return r;
		count++;
		while (i < n && p[i] == '\0')
			i++;
	}
	return count;
}

typedef struct ModinfoCtx {
	int (*fn)(const char *key, size_t key_len, const char *value, void *u);
	void *u;
} ModinfoCtx;

static int modinfo_one(const char *str, size_t len, void *u)
{
	ModinfoCtx *c = u;
	const char *eq = memchr(str, '=', len);

	if (!eq)
		return c->fn(str, len, str + len, c->u);
	return c->fn(str, eq - str, eq + 1, c->u);
}

int modelf_modinfo(const ModElf *e,
		   int (*fn)(const char *key, size_t key_len, const char *value, void *u),
		   void *u)
{
	ModinfoCtx c = { fn, u };

	return each_string(e, &e->modinfo, modinfo_one, &c);
}

/* The name at off in .strtab, or NULL when off is outside it or the name is not
 * terminated inside it (*ret_bad set). */
static const char *strtab_name(const ModElf *e, uint64_t off, bool *ret_bad)
{
	const char *s = (const char *)e->map + e->strtab.offset + off;

	if (off >= e->strtab.size)
		return NULL;
	if (!memchr(s, '\0', e->strtab.size - off)) {
		*ret_bad = true;
		return NULL;
	}
	return s;
}

static size_t sym_size(const ModElf *e)
{
	return e->is64 ? sizeof(Elf64_Sym) : sizeof(Elf32_Sym);
}

static bool symtab_usable(const ModElf *e)
{
	return e->strtab.found && e->symtab.found && e->symtab.size % sym_size(e) == 0;
}

#define SYM(e, i, field)                                                                 \
	RD(e, (e)->symtab.offset + (i) * sym_size(e), Elf32_Sym, Elf64_Sym, field)

typedef struct ExportsCtx {
	int (*fn)(const char *name, void *u);
	void *u;
} ExportsCtx;

static int export_one(const char *str, size_t len _unused_, void *u)
{
	ExportsCtx *c = u;

	return c->fn(str, c->u);
}

int modelf_exports(const ModElf *e, int (*fn)(const char *name, void *u), void *u)
{
	static const char crc_prefix[] = "__crc_";
	ExportsCtx c = { fn, u };
	uint64_t n;
	int count = 0, r;

	if (!symtab_usable(e))
		goto fallback;

	/* libkmod drops .symtab altogether when any name offset is out of range, so check
	 * them all before the first call. */
	n = e->symtab.size / sym_size(e);
	for (uint64_t i = 1; i < n; i++) {
		bool bad = false;
		const char *name = strtab_name(e, SYM(e, i, st_name), &bad);

		if (bad)
			return -ENOEXEC;
		if (!name)
			goto fallback;
		if (strncmp(name, crc_prefix, sizeof(crc_prefix) - 1) == 0)
			count++;
	}
	if (count == 0)
		goto fallback;

	count = 0;
	for (uint64_t i = 1; i < n; i++) {
		bool bad = false;
		const char *name = strtab_name(e, SYM(e, i, st_name), &bad);

		if (strncmp(name, crc_prefix, sizeof(crc_prefix) - 1) != 0)
			continue;
		r = fn(name + sizeof(crc_prefix) - 1, u);
		if (r < 0)
			return r;
		count++;
	}
	return count;

fallback:
	if (!e->ksymtab_strings.found)
		return -ENOENT;
	return each_string(e, &e->ksymtab_strings, export_one, &c);
}

/* __versions, looked up by name through an open-addressing table of entry indexes + 1,
 * the first entry of a name winning. */
typedef struct Versions {
	uint64_t offset;
	size_t count;
	size_t crc_size;
	uint32_t *table;
	size_t mask;
	uint8_t *visited;
} Versions;

static uint32_t hash_name(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static const char *version_name(const ModElf *e, const Versions *v, size_t i, size_t *ret_len)
{
	const char *s = (const char *)e->map + v->offset + i * MODVERSION_SIZE + v->crc_size;

	*ret_len = strnlen(s, MODVERSION_SIZE - v->crc_size);
	return s;
}

static int versions_init(const ModElf *e, Versions *v)
{
	size_t slots = 2;

	*v = (Versions){ .crc_size = e->is64 ? 8 : 4 };
	if (!e->versions.found || e->versions.size == 0 ||
	    e->versions.size % MODVERSION_SIZE != 0)
		return 0;

	v->offset = e->versions.offset;
	v->count = e->versions.size / MODVERSION_SIZE;
	if (v->count >= UINT32_MAX / 2)
		return -ENOEXEC;
	while (slots < v->count * 2)
		slots *= 2;
	v->table = calloc(slots, sizeof(uint32_t));
	v->visited = calloc(v->count, 1);
	if (!v->table || !v->visited)
		return -ENOMEM;
	v->mask = slots - 1;

	for (size_t i = 0; i < v->count; i++) {
		size_t len, j;
		const char *name = version_name(e, v, i, &len);

		for (j = hash_name(name, len) & v->mask; v->table[j]; j = (j + 1) & v->mask) {
			size_t l;
			const char *o = version_name(e, v, v->table[j] - 1, &l);

			if (l == len && memcmp(o, name, len) == 0)
				break;
		}
		if (!v->table[j])
			v->table[j] = i + 1;
	}
	return 0;
}

static void versions_done(Versions *v)
{
	free(v->table);
	free(v->visited);
}

static uint64_t versions_crc(const ModElf *e, const Versions *v, size_t i)
{
	uint64_t off = v->offset + i * MODVERSION_SIZE;

	return v->crc_size == 8 ? rd64(e, off) : rd32(e, off);
}

/* The index of the first entry called name, or -1. */
static ssize_t versions_find(const ModElf *e, const Versions *v, const char *name)
{
	size_t len = strlen(name);

	if (!v->table)
		return -1;
	for (size_t j = hash_name(name, len) & v->mask; v->table[j]; j = (j + 1) & v->mask) {
		size_t l;
		const char *o = version_name(e, v, v->table[j] - 1, &l);

		if (l == len && memcmp(o, name, len) == 0)
			return v->table[j] - 1;
	}
	return -1;
}

static bool need_skipped(const ModElf *e, uint64_t i)
{
	if (SYM(e, i, st_shndx) != SHN_UNDEF)
		return true;
	/* sparc marks global register variables undefined; they are not needs */
	return (e->machine == EM_SPARC || e->machine == EM_SPARCV9) &&
	       ELF64_ST_TYPE(SYM(e, i, st_info)) == STT_REGISTER;
}

int modelf_needs(const ModElf *e,
		 int (*fn)(const char *name, uint64_t crc, char bind, void *u),
		 void *u)
{
	_cleanup_(versions_done) Versions v = {};
	uint64_t n;
	int count = 0, r;

	if (!symtab_usable(e))
		return -EINVAL;

	/* all or nothing, as libkmod: check every name before the first call */
	n = e->symtab.size / sym_size(e);
	for (uint64_t i = 1; i < n; i++) {
		bool bad = false;

		if (need_skipped(e, i))
			continue;
		if (!strtab_name(e, SYM(e, i, st_name), &bad))
			return bad ? -ENOEXEC : -EINVAL;
	}

	r = versions_init(e, &v);
	if (r < 0)
		return r;

	for (uint64_t i = 1; i < n; i++) {
		bool bad = false;
		const char *name;
		uint64_t crc = 0;
		ssize_t k;

		if (need_skipped(e, i))
			continue;
		name = strtab_name(e, SYM(e, i, st_name), &bad);
		if (name[0] == '\0')
			continue;
		k = versions_find(e, &v, name);
		if (k >= 0) {
			v.visited[k] = 1;
			crc = versions_crc(e, &v, k);
		}
		r = fn(name, crc, ELF64_ST_BIND(SYM(e, i, st_info)) == STB_WEAK ? 'W' : 'U', u);
		if (r < 0)
			return r;
		count++;
	}

	for (size_t k = 0; k < v.count; k++) {
		char buf[MODVERSION_SIZE];
		size_t len;
		const char *name;

		if (v.visited[k])
			continue;
		name = version_name(e, &v, k, &len);
		if (len == MODVERSION_SIZE - v.crc_size) {
			memcpy(buf, name, len);
			buf[len] = '\0';
			name = buf;
		}
		r = fn(name, versions_crc(e, &v, k), 'U', u);
		if (r < 0)
			return r;
		count++;
	}
	return count;
}

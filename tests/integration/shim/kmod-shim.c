/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libkmodd-shim.so: an LD_PRELOAD library for the host integration tests.
 *
 * It fakes the kernel's module syscalls over a fake root (KMODD_SHIM_ROOT):
 * init_module(), finit_module() and delete_module(), as libc functions and through
 * syscall(). A load records <root>/sys/module/<name>/ and a line of <root>/proc/modules,
 * an unload removes them, and lookups of /sys/module/... and /proc/modules are redirected
 * into the root so that libkmod sees the fake state. Everything else passes through
 * untouched.
 *
 * Environment, usage and caveats: README.md beside this file.
 */

/* The interposed symbols must keep their own names: with meson's -D_FILE_OFFSET_BITS=64
 * the headers would turn stat() into stat64(), open() into open64() and so on. */
#undef _FILE_OFFSET_BITS

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "macros.h"

/* The kernel's MODULE_NAME_LEN on 64-bit, the NUL included. */
#define SHIM_MODULE_NAME_MAX 56
#define SHIM_FAIL_MAX 64
#define SHIM_LOG ".kmodd-shim.log"
#define MODULE_INIT_COMPRESSED_FILE_FLAG 4
#define MODULE_INIT_FLAGS_ALL 7

/* Not declared by glibc's headers (or only under _FORTIFY_SOURCE), exported by it. */
int init_module(void *image, unsigned long len, const char *params);
int finit_module(int fd, const char *params, int flags);
int delete_module(const char *name, unsigned int flags);
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dir_fd, const char *path, int flags);
int __openat64_2(int dir_fd, const char *path, int flags);
int __xstat(int ver, const char *path, struct stat *buf);
int __xstat64(int ver, const char *path, struct stat64 *buf);
int __lxstat(int ver, const char *path, struct stat *buf);
int __lxstat64(int ver, const char *path, struct stat64 *buf);
int __fxstatat(int ver, int dir_fd, const char *path, struct stat *buf, int flags);
int __fxstatat64(int ver, int dir_fd, const char *path, struct stat64 *buf, int flags);

typedef struct ShimFail {
	char name[SHIM_MODULE_NAME_MAX];
	int error;
} ShimFail;

typedef struct Shim {
	bool configured;
	char root[PATH_MAX]; /* absolute, without a trailing slash; "" for "/" */
	ShimFail fail[SHIM_FAIL_MAX];
	size_t n_fail;
} Shim;

static Shim shim;
static pthread_once_t shim_once = PTHREAD_ONCE_INIT;

/* The next definition of a symbol we interpose (libc's, or a sanitizer's interceptor),
 * looked up on first use: other libraries' constructors may call us before ours ran. */
#define REAL(fn)                                                                \
	({                                                                      \
		static __typeof__(&fn) real_;                                   \
		__typeof__(&fn) f_ = __atomic_load_n(&real_, __ATOMIC_RELAXED); \
		if (!f_) {                                                      \
			f_ = (__typeof__(&fn))dlsym(RTLD_NEXT, #fn);            \
			__atomic_store_n(&real_, f_, __ATOMIC_RELAXED);         \
		}                                                               \
		f_;                                                             \
	})

#define REAL_OR_RETURN(var, fn, failure) \
	__typeof__(&fn) var = REAL(fn);  \
	if (!var) {                      \
		errno = ENOSYS;          \
		return failure;          \
	}

static void warn(const char *fmt, ...) _printf_(1, 2);
static void warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	fputs("kmodd-shim: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	errno = saved;
}

static const char *errno_to_name(int e)
{
	const char *n = strerrorname_np(e);
	return n ?: "EUNKNOWN";
}

static int errno_from_string(const char *s, size_t n)
{
	char buf[32];
	char *end;
	long l;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';

	if (buf[0] >= '0' && buf[0] <= '9') {
		errno = 0;
		l = strtol(buf, &end, 10);
		if (errno != 0 || *end != '\0' || l <= 0 || l > 4095)
			return -EINVAL;
		return (int)l;
	}
	for (int e = 1; e < 4096; e++) {
		const char *name = strerrorname_np(e);
		if (name && streq(name, buf))
			return e;
	}
	return -EINVAL;
}

/* Module names compare like the kernel's: '-' and '_' are the same. */
static bool module_name_eq(const char *a, size_t a_len, const char *b)
{
	size_t i;

	for (i = 0; i < a_len && b[i]; i++) {
		char x = a[i] == '-' ? '_' : a[i], y = b[i] == '-' ? '_' : b[i];
		if (x != y)
			return false;
	}
	return i == a_len && b[i] == '\0';
}

/* A name we can use as a directory below sys/module and as a /proc/modules column. */
static bool module_name_valid(const char *s, size_t n)
{
	if (n == 0 || n >= SHIM_MODULE_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ',' || (unsigned char)s[i] <= ' ' ||
		    s[i] == 0x7f)
			return false;
	return true;
}

static void fail_parse(const char *spec)
{
	const char *p = spec;

	while (p && *p) {
		size_t len = strcspn(p, ","), name_len;
		const char *colon = memchr(p, ':', len);
		int e;

		if (len == 0) {
			p++;
			continue;
		}
		name_len = colon ? (size_t)(colon - p) : 0;
		e = colon ? errno_from_string(colon + 1, len - name_len - 1) : -EINVAL;
		if (!colon || !module_name_valid(p, name_len) || e < 0)
			warn("KMODD_SHIM_FAIL: '%.*s' is not NAME:ERRNO, ignoring",
			     (int)len, p);
		else if (shim.n_fail >= SHIM_FAIL_MAX)
			warn("KMODD_SHIM_FAIL: more than %d entries, ignoring '%.*s'",
			     SHIM_FAIL_MAX, (int)len, p);
		else {
			ShimFail *f = &shim.fail[shim.n_fail++];
			memcpy(f->name, p, name_len);
			f->name[name_len] = '\0';
			f->error = e;
		}
		p += len;
	}
}

static int fail_lookup(const char *name)
{
	for (size_t i = 0; i < shim.n_fail; i++)
		if (module_name_eq(shim.fail[i].name, strlen(shim.fail[i].name), name))
			return shim.fail[i].error;
	return 0;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = c;
		if (c == '\0')
			return 0;
	}
}

static int root_path(char buf[static PATH_MAX], const char *fmt, ...) _printf_(2, 3);
static int root_path(char buf[static PATH_MAX], const char *fmt, ...)
{
	size_t n = strlen(shim.root);
	va_list ap;
	int r;

	memcpy(buf, shim.root, n + 1);
	va_start(ap, fmt);
	r = vsnprintf(buf + n, PATH_MAX - n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= PATH_MAX - n)
		return -ENAMETOOLONG;
	return 0;
}

/* The skeleton every kernel has: an empty module list. */
static void root_prepare(void)
{
	char path[PATH_MAX];
	int fd, r;

	if (root_path(path, "/sys/module") < 0 || mkdir_p(path) < 0 ||
	    root_path(path, "/proc") < 0 || mkdir_p(path) < 0 ||
	    root_path(path, "/proc/modules") < 0) {
		warn("cannot create %s/sys/module and %s/proc: %m", shim.root, shim.root);
		return;
	}
	fd = REAL(open)(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	r = fd < 0 ? -errno : 0;
	safe_close(fd);
	if (r < 0)
		warn("cannot create %s: %s", path, strerror(-r));
}

static void shim_init_once(void)
{
	const char *root = getenv("KMODD_SHIM_ROOT");
	char cwd[PATH_MAX];
	size_t n;
	int saved = errno;

	if (isempty(root))
		goto out;
	if (root[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)) ||
		    snprintf(shim.root, sizeof(shim.root), "%s/%s", cwd, root) >=
			    (int)sizeof(shim.root)) {
			warn("KMODD_SHIM_ROOT=%s: cannot make it absolute, ignoring",
			     root);
			goto out;
		}
	} else if (snprintf(shim.root, sizeof(shim.root), "%s", root) >=
		   (int)sizeof(shim.root)) {
		warn("KMODD_SHIM_ROOT: path too long, ignoring");
		goto out;
	}
	n = strlen(shim.root);
	while (n > 0 && shim.root[n - 1] == '/')
		shim.root[--n] = '\0';
	shim.configured = true;
	fail_parse(getenv("KMODD_SHIM_FAIL"));
	root_prepare();
out:
	errno = saved;
}

static bool shim_configured(void)
{
	pthread_once(&shim_once, shim_init_once);
	return shim.configured;
}

/*
 * Path redirection: "/sys/module", "/sys/module/..." and "/proc/modules" become the same
 * path below the root; everything else (relative paths included) is returned unchanged.
 * NULL with errno set when the result does not fit. Not inlined so that the NULL check
 * survives callers whose path parameter libc declares nonnull.
 */
static __attribute__((noinline)) const char *path_redirect(const char *path,
							   char buf[static PATH_MAX])
{
	const char *rest;

	if (!path || path[0] != '/')
		return path;
	rest = startswith(path, "/sys/module");
	if (!(rest && (*rest == '\0' || *rest == '/')) && !streq(path, "/proc/modules"))
		return path;
	if (!shim_configured())
		return path;
	if (root_path(buf, "%s", path) < 0) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	return buf;
}

#define REDIRECT_OR_RETURN(path, failure)          \
	char redirect_buf_[PATH_MAX];              \
	path = path_redirect(path, redirect_buf_); \
	if (!path)                                 \
		return failure;

static bool open_needs_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define OPEN_MODE(flags, last)                    \
	({                                        \
		mode_t m_ = 0;                    \
		if (open_needs_mode(flags)) {     \
			va_list ap_;              \
			va_start(ap_, last);      \
			m_ = va_arg(ap_, mode_t); \
			va_end(ap_);              \
		}                                 \
		m_;                               \
	})

_public_ int open(const char *path, int flags, ...)
{
	mode_t mode = OPEN_MODE(flags, flags);
	REAL_OR_RETURN(f, open, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(path, flags, mode);
}

_public_ int open64(const char *path, int flags, ...)
{
	mode_t mode = OPEN_MODE(flags, flags);
	REAL_OR_RETURN(f, open64, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(path, flags, mode);
}

_public_ int openat(int dir_fd, const char *path, int flags, ...)
{
	mode_t mode = OPEN_MODE(flags, flags);
	REAL_OR_RETURN(f, openat, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(dir_fd, path, flags, mode);
}

_public_ int openat64(int dir_fd, const char *path, int flags, ...)
{
	mode_t mode = OPEN_MODE(flags, flags);
	REAL_OR_RETURN(f, openat64, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(dir_fd, path, flags, mode);
}

_public_ int __open_2(const char *path, int flags)
{
	REAL_OR_RETURN(f, __open_2, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(path, flags);
}

_public_ int __open64_2(const char *path, int flags)
{
	REAL_OR_RETURN(f, __open64_2, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(path, flags);
}

_public_ int __openat_2(int dir_fd, const char *path, int flags)
{
	REAL_OR_RETURN(f, __openat_2, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(dir_fd, path, flags);
}

_public_ int __openat64_2(int dir_fd, const char *path, int flags)
{
	REAL_OR_RETURN(f, __openat64_2, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(dir_fd, path, flags);
}

_public_ FILE *fopen(const char *path, const char *mode)
{
	REAL_OR_RETURN(f, fopen, NULL);
	REDIRECT_OR_RETURN(path, NULL);
	return f(path, mode);
}

_public_ FILE *fopen64(const char *path, const char *mode)
{
	REAL_OR_RETURN(f, fopen64, NULL);
	REDIRECT_OR_RETURN(path, NULL);
	return f(path, mode);
}

_public_ int stat(const char *path, struct stat *buf)
{
	REAL_OR_RETURN(f, stat, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(path, buf);
}

_public_ int stat64(const char *path, struct stat64 *buf)
{
	REAL_OR_RETURN(f, stat64, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(path, buf);
}

_public_ int lstat(const char *path, struct stat *buf)
{
	REAL_OR_RETURN(f, lstat, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(path, buf);
}

_public_ int lstat64(const char *path, struct stat64 *buf)
{
	REAL_OR_RETURN(f, lstat64, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(path, buf);
}

_public_ int fstatat(int dir_fd, const char *path, struct stat *buf, int flags)
{
	REAL_OR_RETURN(f, fstatat, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(dir_fd, path, buf, flags);
}

_public_ int fstatat64(int dir_fd, const char *path, struct stat64 *buf, int flags)
{
	REAL_OR_RETURN(f, fstatat64, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(dir_fd, path, buf, flags);
}

_public_ int statx(int dir_fd, const char *path, int flags, unsigned int mask,
		   struct statx *buf)
{
	REAL_OR_RETURN(f, statx, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(dir_fd, path, flags, mask, buf);
}

/* Programs built against glibc < 2.33 call these instead of stat() and friends. */
_public_ int __xstat(int ver, const char *path, struct stat *buf)
{
	REAL_OR_RETURN(f, __xstat, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(ver, path, buf);
}

_public_ int __xstat64(int ver, const char *path, struct stat64 *buf)
{
	REAL_OR_RETURN(f, __xstat64, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(ver, path, buf);
}

_public_ int __lxstat(int ver, const char *path, struct stat *buf)
{
	REAL_OR_RETURN(f, __lxstat, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(ver, path, buf);
}

_public_ int __lxstat64(int ver, const char *path, struct stat64 *buf)
{
	REAL_OR_RETURN(f, __lxstat64, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(ver, path, buf);
}

_public_ int __fxstatat(int ver, int dir_fd, const char *path, struct stat *buf, int flags)
{
	REAL_OR_RETURN(f, __fxstatat, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(ver, dir_fd, path, buf, flags);
}

_public_ int __fxstatat64(int ver, int dir_fd, const char *path, struct stat64 *buf,
			  int flags)
{
	REAL_OR_RETURN(f, __fxstatat64, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(ver, dir_fd, path, buf, flags);
}

_public_ int access(const char *path, int mode)
{
	REAL_OR_RETURN(f, access, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(path, mode);
}

_public_ int faccessat(int dir_fd, const char *path, int mode, int flags)
{
	REAL_OR_RETURN(f, faccessat, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(dir_fd, path, mode, flags);
}

_public_ DIR *opendir(const char *path)
{
	REAL_OR_RETURN(f, opendir, NULL);
	REDIRECT_OR_RETURN(path, NULL);
	return f(path);
}

_public_ ssize_t readlink(const char *path, char *buf, size_t size)
{
	REAL_OR_RETURN(f, readlink, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(path, buf, size);
}

_public_ ssize_t readlinkat(int dir_fd, const char *path, char *buf, size_t size)
{
	REAL_OR_RETURN(f, readlinkat, -1);
	REDIRECT_OR_RETURN(path, -1);
	return f(dir_fd, path, buf, size);
}

/* ---- the module image ---- */

typedef struct ElfSection {
	const char *data;
	size_t size;
} ElfSection;

typedef struct ModuleImage {
	char name[SHIM_MODULE_NAME_MAX];
	char depends[PATH_MAX]; /* "a,b" as in .modinfo, "" without dependencies */
} ModuleImage;

static bool range_ok(size_t len, uint64_t offset, uint64_t size)
{
	return offset <= len && size <= len - offset;
}

typedef struct ElfShdr {
	uint64_t name, type, offset, size;
} ElfShdr;

static void elf_shdr(const uint8_t *mem, bool is64, uint64_t at, ElfShdr *ret)
{
	if (is64) {
		Elf64_Shdr s;
		memcpy(&s, mem + at, sizeof(s));
		*ret = (ElfShdr){ s.sh_name, s.sh_type, s.sh_offset, s.sh_size };
	} else {
		Elf32_Shdr s;
		memcpy(&s, mem + at, sizeof(s));
		*ret = (ElfShdr){ s.sh_name, s.sh_type, s.sh_offset, s.sh_size };
	}
}

/* -ENOEXEC for anything the kernel would not take as a relocatable object of this
 * machine's byte order, -ENOENT when it has no section of that name. */
static int elf_find_section(const uint8_t *mem, size_t len, const char *want,
			    ElfSection *ret)
{
	uint64_t shoff, shentsize, shnum, shstrndx;
	ElfShdr strtab, sh;
	bool is64;

	if (len < EI_NIDENT || memcmp(mem, ELFMAG, SELFMAG) != 0)
		return -ENOEXEC;
	if (mem[EI_DATA] !=
	    (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB))
		return -ENOEXEC;
	if (mem[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr eh;
		if (len < sizeof(eh))
			return -ENOEXEC;
		memcpy(&eh, mem, sizeof(eh));
		if (eh.e_type != ET_REL)
			return -ENOEXEC;
		shoff = eh.e_shoff, shentsize = eh.e_shentsize, shnum = eh.e_shnum;
		shstrndx = eh.e_shstrndx;
		is64 = true;
	} else if (mem[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr eh;
		if (len < sizeof(eh))
			return -ENOEXEC;
		memcpy(&eh, mem, sizeof(eh));
		if (eh.e_type != ET_REL)
			return -ENOEXEC;
		shoff = eh.e_shoff, shentsize = eh.e_shentsize, shnum = eh.e_shnum;
		shstrndx = eh.e_shstrndx;
		is64 = false;
	} else
		return -ENOEXEC;

	if (shentsize < (is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)) ||
	    !range_ok(len, shoff, shnum * shentsize) || shstrndx >= shnum)
		return -ENOEXEC;

	elf_shdr(mem, is64, shoff + shstrndx * shentsize, &strtab);
	if (strtab.type == SHT_NOBITS || !range_ok(len, strtab.offset, strtab.size))
		return -ENOEXEC;

	for (uint64_t i = 0; i < shnum; i++) {
		const char *name;

		elf_shdr(mem, is64, shoff + i * shentsize, &sh);
		if (sh.name >= strtab.size)
			continue;
		name = (const char *)mem + strtab.offset + sh.name;
		if (strnlen(name, strtab.size - sh.name) == strtab.size - sh.name ||
		    !streq(name, want))
			continue;
		if (sh.type == SHT_NOBITS)
			sh.size = 0;
		if (!range_ok(len, sh.offset, sh.size))
			return -ENOEXEC;
		*ret = (ElfSection){ (const char *)mem + sh.offset, sh.size };
		return 0;
	}
	return -ENOENT;
}

/* The value of "key=" in .modinfo (NUL-separated strings, padded with NULs). */
static bool modinfo_get(const ElfSection *s, const char *key, const char **ret,
			size_t *ret_len)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i < s->size;) {
		const char *p = s->data + i;
		size_t n = strnlen(p, s->size - i);

		if (n > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
			*ret = p + klen + 1;
			*ret_len = n - klen - 1;
			return true;
		}
		i += n + 1;
	}
	return false;
}

static int module_image_parse(const void *mem, size_t len, ModuleImage *ret)
{
	ElfSection modinfo = {}, this_module = {};
	const char *name = NULL, *deps;
	size_t name_len = 0, deps_len;
	int r;

	r = elf_find_section(mem, len, ".modinfo", &modinfo);
	if (r == -ENOEXEC)
		return r;
	if (r >= 0 && modinfo_get(&modinfo, "name", &name, &name_len)) {
		/* taken */
	} else if (elf_find_section(mem, len, ".gnu.linkonce.this_module",
				    &this_module) >= 0) {
		/* struct module: enum state, struct list_head list, char name[] */
		size_t off = ((const uint8_t *)mem)[EI_CLASS] == ELFCLASS64 ? 24 : 12;
		if (this_module.size <= off)
			return -ENOEXEC;
		name = this_module.data + off;
		name_len = strnlen(name, this_module.size - off < SHIM_MODULE_NAME_MAX ?
						 this_module.size - off :
						 SHIM_MODULE_NAME_MAX);
	} else
		return -ENOEXEC;
	if (!module_name_valid(name, name_len))
		return -ENOEXEC;
	memcpy(ret->name, name, name_len);
	ret->name[name_len] = '\0';

	ret->depends[0] = '\0';
	if (r >= 0 && modinfo_get(&modinfo, "depends", &deps, &deps_len)) {
		if (deps_len >= sizeof(ret->depends))
			return -ENOEXEC;
		memcpy(ret->depends, deps, deps_len);
		ret->depends[deps_len] = '\0';
	}
	return 0;
}

/* ---- the fake kernel state: <root>/proc/modules and <root>/sys/module ---- */

/* One line of /proc/modules: "name size refcnt users state offset [taints]", users being
 * "a,b," or "-". Lines we cannot parse are kept as they are (name empty, tail = line). */
typedef struct ProcModule {
	char name[SHIM_MODULE_NAME_MAX];
	unsigned long size;
	long refcnt;
	char *users; /* "a,b," or "" */
	char *tail; /* after the users column: " Live 0x0000000000000000" */
} ProcModule;

typedef struct ModuleTable {
	ProcModule *modules;
	size_t n, allocated;
} ModuleTable;

static void module_table_done(ModuleTable *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->modules[i].users);
		free(t->modules[i].tail);
	}
	free(t->modules);
	*t = (ModuleTable){};
}

static ProcModule *module_table_find(ModuleTable *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->modules[i].name[0] &&
		    module_name_eq(name, strlen(name), t->modules[i].name))
			return &t->modules[i];
	return NULL;
}

static ProcModule *module_table_add(ModuleTable *t)
{
	if (t->n >= t->allocated) {
		size_t a = t->allocated ? t->allocated * 2 : 16;
		ProcModule *m = reallocarray(t->modules, a, sizeof(*m));
		if (!m)
			return NULL;
		t->modules = m;
		t->allocated = a;
	}
	t->modules[t->n] = (ProcModule){};
	return &t->modules[t->n++];
}

static int module_table_parse_line(ModuleTable *t, const char *line)
{
	ProcModule *m = module_table_add(t);
	const char *p = line, *q;
	char *end;
	size_t n;

	if (!m)
		return -ENOMEM;

	n = strcspn(p, " ");
	if (!module_name_valid(p, n) || p[n] != ' ')
		goto raw;
	memcpy(m->name, p, n);
	m->name[n] = '\0';
	p += n + 1;
	errno = 0;
	m->size = strtoul(p, &end, 10);
	if (errno != 0 || end == p || *end != ' ')
		goto raw;
	p = end + 1;
	m->refcnt = strtol(p, &end, 10);
	if (errno != 0 || end == p || *end != ' ')
		goto raw;
	p = end + 1;
	q = p + strcspn(p, " ");
	m->users = streq(p, "-") || startswith(p, "- ") ? strdup("") : strndup(p, q - p);
	m->tail = strdup(q);
	if (!m->users || !m->tail)
		return -ENOMEM;
	return 0;
raw:
	free(m->users);
	*m = (ProcModule){ .tail = strdup(line) };
	return m->tail ? 0 : -ENOMEM;
}

static int read_file_at(const char *path, char **ret)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *buf = NULL;
	size_t n = 0, allocated = 0;

	fd = REAL(open)(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t k;

		if (allocated - n < 4096) {
			char *b = realloc(buf, allocated + 65536);
			if (!b)
				return -ENOMEM;
			buf = b;
			allocated += 65536;
		}
		k = read(fd, buf + n, allocated - n - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		n += k;
	}
	buf[n] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

static int module_table_load(ModuleTable *t)
{
	char path[PATH_MAX];
	_cleanup_free_ char *text = NULL;
	char *p, *nl;
	int r;

	r = root_path(path, "/proc/modules");
	if (r < 0)
		return r;
	r = read_file_at(path, &text);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	for (p = text; *p; p = nl + 1) {
		nl = strchrnul(p, '\n');
		bool last = *nl == '\0';
		*nl = '\0';
		if (*p) {
			r = module_table_parse_line(t, p);
			if (r < 0)
				return r;
		}
		if (last)
			break;
	}
	return 0;
}

static int write_file_atomic(const char *path, const char *data, size_t size)
{
	char tmp[PATH_MAX];
	_cleanup_close_ int fd = -EBADF;

	if (snprintf(tmp, sizeof(tmp), "%s.kmodd-shim-tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = REAL(open)(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0)
		return -errno;
	for (size_t done = 0; done < size;) {
		ssize_t k = write(fd, data + done, size - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int r = -errno;
			unlink(tmp);
			return r;
		}
		done += k;
	}
	if (rename(tmp, path) < 0) {
		int r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

static int module_table_save(const ModuleTable *t)
{
	char path[PATH_MAX];
	_cleanup_free_ char *text = NULL;
	size_t size = 0;
	FILE *f;
	int r;

	r = root_path(path, "/proc/modules");
	if (r < 0)
		return r;
	f = open_memstream(&text, &size);
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		const ProcModule *m = &t->modules[i];
		if (!m->name[0])
			fprintf(f, "%s\n", m->tail);
		else
			fprintf(f, "%s %lu %ld %s%s\n", m->name, m->size, m->refcnt,
				isempty(m->users) ? "-" : m->users, m->tail);
	}
	if (fclose(f) != 0)
		return -ENOMEM;
	return write_file_atomic(path, text, size);
}

static bool users_contains(const char *users, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = users; p && *p;) {
		size_t k = strcspn(p, ",");
		if (module_name_eq(p, k, name) && k == n)
			return true;
		p += k;
		if (*p == ',')
			p++;
	}
	return false;
}

static int users_add(char **users, const char *name)
{
	char *u;

	if (asprintf(&u, "%s%s,", strempty(*users), name) < 0)
		return -ENOMEM;
	free(*users);
	*users = u;
	return 0;
}

static void users_remove(char *users, const char *name)
{
	size_t n = strlen(name);

	for (char *p = users; p && *p;) {
		size_t k = strcspn(p, ",");
		if (k == n && module_name_eq(p, k, name)) {
			char *next = p + k + (p[k] == ',');
			memmove(p, next, strlen(next) + 1);
			return;
		}
		p += k;
		if (*p == ',')
			p++;
	}
}

static int sysfs_write(const char *module, const char *file, const char *fmt, ...)
	_printf_(3, 4);
static int sysfs_write(const char *module, const char *file, const char *fmt, ...)
{
	char path[PATH_MAX], data[64];
	va_list ap;
	int r, n;

	r = root_path(path, "/sys/module/%s/%s", module, file);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	n = vsnprintf(data, sizeof(data), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(data))
		return -EINVAL;
	return write_file_atomic(path, data, n);
}

static bool sysfs_loaded(const char *module)
{
	char path[PATH_MAX];
	struct stat st;

	return root_path(path, "/sys/module/%s/initstate", module) >= 0 &&
	       REAL(stat)(path, &st) >= 0;
}

static int rm_rf_at(int parent_fd, const char *name)
{
	_cleanup_close_ int fd = -EBADF;
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (unlinkat(parent_fd, name, 0) >= 0)
		return 0;
	if (errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	fd = REAL(openat)(parent_fd, name,
			  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d)
		return -errno;
	fd = -EBADF;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		int k = rm_rf_at(dirfd(d), de->d_name);
		if (k < 0 && r == 0)
			r = k;
	}
	closedir(d);
	if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0 && r == 0)
		r = -errno;
	return r;
}

/* ---- the module calls ---- */

static int shim_refuse(const char *call)
{
	static bool warned;

	if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
		warn("KMODD_SHIM_ROOT is not set, refusing %s()", call);
	return -ENOSYS;
}

/* Every module call holds an exclusive lock on the log for its whole duration, so that
 * concurrent loads and unloads (several processes, several threads) see a consistent
 * state. The lock goes with the descriptor. */
static int shim_lock(const char *call, int *ret_fd)
{
	char path[PATH_MAX];
	int fd, r;

	if (!shim_configured())
		return shim_refuse(call);
	r = root_path(path, "/sys/module/" SHIM_LOG);
	if (r < 0)
		return r;
	fd = REAL(open)(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0 && errno == ENOENT) {
		root_prepare();
		fd = REAL(open)(path,
				O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
				0644);
	}
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			r = -errno;
			safe_close(fd);
			return r;
		}
	*ret_fd = fd;
	return 0;
}

/* "load NAME" / "unload NAME" / "fail NAME ERRNO", in one write. */
static void shim_log_result(int fd, const char *verb, const char *name, int r)
{
	char line[128];
	int n;

	if (r < 0)
		n = snprintf(line, sizeof(line), "fail %s %s\n", name, errno_to_name(-r));
	else
		n = snprintf(line, sizeof(line), "%s %s\n", verb, name);
	if (n > 0 && (size_t)n < sizeof(line) && write(fd, line, n) != n)
		warn("cannot write the log: %m");
}

static int sysfs_link_holder(const char *module, const char *holder)
{
	char path[PATH_MAX], target[PATH_MAX];
	int r;

	r = root_path(path, "/sys/module/%s/holders", module);
	if (r < 0)
		return r;
	r = mkdir_p(path);
	if (r < 0)
		return r;
	r = root_path(path, "/sys/module/%s/holders/%s", module, holder);
	if (r < 0)
		return r;
	snprintf(target, sizeof(target), "../../%s", holder);
	if (symlink(target, path) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int sysfs_unlink_holder(const char *module, const char *holder)
{
	char path[PATH_MAX];
	int r;

	r = root_path(path, "/sys/module/%s/holders/%s", module, holder);
	if (r < 0)
		return r;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Calls fn(name, userdata) for each module of an "a,b,c" list; stops at the first
 * error. */
static int depends_foreach(const char *depends,
			   int (*fn)(const char *name, void *userdata), void *userdata)
{
	for (const char *p = depends; *p;) {
		size_t n = strcspn(p, ",");
		char name[SHIM_MODULE_NAME_MAX];
		int r;

		if (n > 0) {
			if (!module_name_valid(p, n))
				return -ENOEXEC;
			memcpy(name, p, n);
			name[n] = '\0';
			r = fn(name, userdata);
			if (r < 0)
				return r;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* The kernel resolves a module's symbols against the loaded modules: a dependency that is
 * not loaded is an unknown symbol, -ENOENT. */
static int depend_check(const char *name, void *userdata)
{
	return module_table_find(userdata, name) ? 0 : -ENOENT;
}

typedef struct DependUse {
	ModuleTable *table;
	const char *user;
} DependUse;

static int depend_use(const char *name, void *userdata)
{
	DependUse *u = userdata;
	ProcModule *d = module_table_find(u->table, name);
	int r;

	if (!d)
		return -ENOENT;
	r = users_add(&d->users, u->user);
	if (r < 0)
		return r;
	d->refcnt++;
	r = sysfs_write(d->name, "refcnt", "%ld\n", d->refcnt);
	if (r < 0)
		return r;
	return sysfs_link_holder(d->name, u->user);
}

/* Loads an image; ret_name is the module's name as soon as it is known. Lock held. */
static int module_load_image(const void *mem, size_t len,
			     char ret_name[static SHIM_MODULE_NAME_MAX])
{
	_cleanup_(module_table_done) ModuleTable t = {};
	char path[PATH_MAX];
	ModuleImage img;
	ProcModule *m;
	int r, e;

	r = module_image_parse(mem, len, &img);
	if (r < 0)
		return r;
	memcpy(ret_name, img.name, SHIM_MODULE_NAME_MAX);

	r = module_table_load(&t);
	if (r < 0)
		return r;
	if (module_table_find(&t, img.name) || sysfs_loaded(img.name))
		return -EEXIST;
	r = depends_foreach(img.depends, depend_check, &t);
	if (r < 0)
		return r;
	e = fail_lookup(img.name);
	if (e > 0)
		return -e;

	m = module_table_add(&t);
	if (!m)
		return -ENOMEM;
	memcpy(m->name, img.name, sizeof(m->name));
	m->size = (len + 4095) / 4096 * 4096;
	m->users = strdup("");
	m->tail = strdup(" Live 0x0000000000000000");
	if (!m->users || !m->tail)
		return -ENOMEM;

	r = root_path(path, "/sys/module/%s/holders", img.name);
	if (r < 0)
		return r;
	r = mkdir_p(path);
	if (r < 0)
		return r;
	r = sysfs_write(img.name, "refcnt", "0\n");
	if (r < 0)
		return r;
	r = sysfs_write(img.name, "coresize", "%lu\n", m->size);
	if (r < 0)
		return r;
	r = depends_foreach(img.depends, depend_use, &(DependUse){ &t, img.name });
	if (r < 0)
		return r;
	r = module_table_save(&t);
	if (r < 0)
		return r;
	return sysfs_write(img.name, "initstate", "live\n");
}

static int image_map_fd(int fd, void **ret_mem, size_t *ret_len)
{
	struct stat st;
	void *mem;
	int fl;

	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if ((fl & O_ACCMODE) == O_WRONLY || (fl & O_PATH))
		return -EBADF;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size < EI_NIDENT)
		return -ENOEXEC;
	mem = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (mem == MAP_FAILED)
		return -errno;
	*ret_mem = mem;
	*ret_len = st.st_size;
	return 0;
}

static int shim_init_module(const void *mem, unsigned long len, const char *params)
{
	char name[SHIM_MODULE_NAME_MAX] = "-";
	_cleanup_close_ int lock = -EBADF;
	int r;

	r = shim_lock("init_module", &lock);
	if (r < 0)
		return r;
	r = mem ? module_load_image(mem, len, name) : -EFAULT;
	shim_log_result(lock, "load", name, r);
	return r;
}

static int shim_finit_module(int fd, const char *params, int flags)
{
	char name[SHIM_MODULE_NAME_MAX] = "-";
	_cleanup_close_ int lock = -EBADF;
	void *mem = NULL;
	size_t len = 0;
	int r;

	r = shim_lock("finit_module", &lock);
	if (r < 0)
		return r;
	if (flags & ~MODULE_INIT_FLAGS_ALL)
		r = -EINVAL;
	else if (flags & MODULE_INIT_COMPRESSED_FILE_FLAG)
		r = -EOPNOTSUPP; /* a kernel without CONFIG_MODULE_DECOMPRESS */
	else
		r = image_map_fd(fd, &mem, &len);
	if (r >= 0) {
		r = module_load_image(mem, len, name);
		munmap(mem, len);
	}
	shim_log_result(lock, "load", name, r);
	return r;
}

static int module_unload_locked(const char *name,
				char ret_name[static SHIM_MODULE_NAME_MAX])
{
	_cleanup_(module_table_done) ModuleTable t = {};
	_cleanup_close_ int dfd = -EBADF;
	char path[PATH_MAX], canonical[SHIM_MODULE_NAME_MAX];
	ProcModule *m;
	size_t n;
	int r;

	if (!name)
		return -EFAULT;
	n = strnlen(name, SHIM_MODULE_NAME_MAX);
	if (!module_name_valid(name, n))
		return -ENOENT;
	memcpy(ret_name, name, n + 1);

	r = module_table_load(&t);
	if (r < 0)
		return r;
	m = module_table_find(&t, name);
	if (!m && !sysfs_loaded(name))
		return -ENOENT;
	if (m && (m->refcnt > 0 || !isempty(m->users)))
		return -EWOULDBLOCK;
	memcpy(canonical, m ? m->name : name, sizeof(canonical));
	memcpy(ret_name, canonical, sizeof(canonical));

	if (m) {
		free(m->users);
		free(m->tail);
		memmove(m, m + 1, (t.n - (m - t.modules) - 1) * sizeof(*m));
		t.n--;
	}
	for (size_t i = 0; i < t.n; i++) {
		ProcModule *d = &t.modules[i];
		if (!d->name[0] || !users_contains(d->users, canonical))
			continue;
		users_remove(d->users, canonical);
		if (d->refcnt > 0)
			d->refcnt--;
		r = sysfs_write(d->name, "refcnt", "%ld\n", d->refcnt);
		if (r < 0)
			return r;
		r = sysfs_unlink_holder(d->name, canonical);
		if (r < 0)
			return r;
	}
	r = module_table_save(&t);
	if (r < 0)
		return r;

	r = root_path(path, "/sys/module");
	if (r < 0)
		return r;
	dfd = REAL(open)(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	return rm_rf_at(dfd, canonical);
}

static int shim_delete_module(const char *name, unsigned int flags)
{
	char logname[SHIM_MODULE_NAME_MAX] = "-";
	_cleanup_close_ int lock = -EBADF;
	int r;

	r = shim_lock("delete_module", &lock);
	if (r < 0)
		return r;
	r = module_unload_locked(name, logname);
	shim_log_result(lock, "unload", logname, r);
	return r;
}

static long shim_return(int r)
{
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r;
}

_public_ int init_module(void *image, unsigned long len, const char *params)
{
	return (int)shim_return(shim_init_module(image, len, params));
}

_public_ int finit_module(int fd, const char *params, int flags)
{
	return (int)shim_return(shim_finit_module(fd, params, flags));
}

_public_ int delete_module(const char *name, unsigned int flags)
{
	return (int)shim_return(shim_delete_module(name, flags));
}

/*
 * libkmod calls finit_module() (and, in newer versions, the others) through syscall().
 * Every other number goes to the real syscall() with six arguments, as many as a syscall
 * takes: like glibc's own syscall(), this reads argument slots the caller may not have
 * filled, which is harmless on the ABIs we run on.
 */
_public_ long syscall(long number, ...)
{
	long a[6];
	va_list ap;

	va_start(ap, number);
	for (size_t i = 0; i < ELEMENTSOF(a); i++)
		a[i] = va_arg(ap, long);
	va_end(ap);

	switch (number) {
	case __NR_init_module:
		return shim_return(shim_init_module((const void *)a[0],
						    (unsigned long)a[1],
						    (const char *)a[2]));
	case __NR_finit_module:
		return shim_return(
			shim_finit_module((int)a[0], (const char *)a[1], (int)a[2]));
	case __NR_delete_module:
		return shim_return(
			shim_delete_module((const char *)a[0], (unsigned int)a[1]));
	}

	REAL_OR_RETURN(f, syscall, -1);
	return f(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

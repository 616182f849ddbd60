/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shim-probe: makes the module calls the way programs do, for test-shim.sh.
 *
 *   shim-probe init FILE            init_module() on the file's contents
 *   shim-probe syscall-init FILE    the same through syscall(__NR_init_module)
 *   shim-probe finit FILE           syscall(__NR_finit_module) on the file
 *   shim-probe delete NAME          delete_module(NAME, O_NONBLOCK)
 *   shim-probe syscall-delete NAME  the same through syscall(__NR_delete_module)
 *   shim-probe syscalls             other syscall() numbers still reach the kernel
 *   shim-probe cat PATH             fopen() and print a file
 *   shim-probe stat PATH            stat() a path, print "directory", "file" or "other"
 *
 * Prints the errno name and exits 1 when a call fails.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "macros.h"

/* glibc exports these without declaring them. */
int init_module(void *image, unsigned long len, const char *params);
int delete_module(const char *name, unsigned int flags);

static int failed(const char *what)
{
	const char *n = strerrorname_np(errno);

	printf("%s\n", n ?: "EUNKNOWN");
	fprintf(stderr, "shim-probe: %s: %m\n", what);
	return 1;
}

static int read_all(const char *path, char **ret, size_t *ret_len)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t n = 0, allocated = 0;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	for (;;) {
		if (allocated - n < 65536) {
			char *b = realloc(buf, allocated + 1048576);
			if (!b)
				return -ENOMEM;
			buf = b;
			allocated += 1048576;
		}
		size_t k = fread(buf + n, 1, allocated - n, f);
		n += k;
		if (k == 0)
			break;
	}
	if (ferror(f))
		return -EIO;
	*ret = TAKE_PTR(buf);
	*ret_len = n;
	return 0;
}

static int run_init(const char *path, bool through_syscall)
{
	_cleanup_free_ char *mem = NULL;
	size_t len = 0;
	long r;

	r = read_all(path, &mem, &len);
	if (r < 0) {
		errno = (int)-r;
		return failed(path);
	}
	if (through_syscall)
		r = syscall(__NR_init_module, mem, (unsigned long)len, "");
	else
		r = init_module(mem, len, "");
	return r < 0 ? failed("init_module") : 0;
}

static int run_finit(const char *path)
{
	_cleanup_close_ int fd = -EBADF;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return failed(path);
	if (syscall(__NR_finit_module, fd, "", 0) < 0)
		return failed("finit_module");
	return 0;
}

static int run_delete(const char *name, bool through_syscall)
{
	long r;

	if (through_syscall)
		r = syscall(__NR_delete_module, name, (unsigned int)O_NONBLOCK);
	else
		r = delete_module(name, O_NONBLOCK);
	return r < 0 ? failed("delete_module") : 0;
}

static int run_syscalls(void)
{
	static const char msg[] = "syscall write ok\n";
	char cwd[4096], cwd2[4096];

	if (syscall(SYS_getpid) != getpid()) {
		fprintf(stderr, "shim-probe: syscall(SYS_getpid) != getpid()\n");
		return 1;
	}
	if (syscall(SYS_write, STDOUT_FILENO, msg, sizeof(msg) - 1) != sizeof(msg) - 1)
		return failed("syscall(SYS_write)");
	if (syscall(SYS_getcwd, cwd, sizeof(cwd)) < 0 || !getcwd(cwd2, sizeof(cwd2)))
		return failed("getcwd");
	if (!streq(cwd, cwd2)) {
		fprintf(stderr,
			"shim-probe: syscall(SYS_getcwd) gave '%s', getcwd() '%s'\n", cwd,
			cwd2);
		return 1;
	}
	errno = 0;
	if (syscall(SYS_close, -1) != -1 || errno != EBADF) {
		fprintf(stderr,
			"shim-probe: syscall(SYS_close, -1) did not fail with EBADF\n");
		return 1;
	}
	return 0;
}

static int run_cat(const char *path)
{
	_cleanup_fclose_ FILE *f = NULL;
	char buf[4096];
	size_t k;

	f = fopen(path, "re");
	if (!f)
		return failed(path);
	while ((k = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, k, stdout);
	return ferror(f) ? failed(path) : 0;
}

static int run_stat(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return failed(path);
	printf("%s\n", S_ISDIR(st.st_mode) ? "directory" :
		       S_ISREG(st.st_mode) ? "file" :
					     "other");
	return 0;
}

int main(int argc, char *argv[])
{
	const char *verb = argc > 1 ? argv[1] : "", *arg = argc > 2 ? argv[2] : NULL;

	if (streq(verb, "syscalls") && argc == 2)
		return run_syscalls();
	if (argc != 3) {
		fprintf(stderr,
			"Usage: shim-probe init|syscall-init|finit|delete|syscall-delete|"
			"cat|stat ARG, or shim-probe syscalls\n");
		return 2;
	}
	if (streq(verb, "init"))
		return run_init(arg, false);
	if (streq(verb, "syscall-init"))
		return run_init(arg, true);
	if (streq(verb, "finit"))
		return run_finit(arg);
	if (streq(verb, "delete"))
		return run_delete(arg, false);
	if (streq(verb, "syscall-delete"))
		return run_delete(arg, true);
	if (streq(verb, "cat"))
		return run_cat(arg);
	if (streq(verb, "stat"))
		return run_stat(arg);
	fprintf(stderr, "shim-probe: unknown verb '%s'\n", verb);
	return 2;
}

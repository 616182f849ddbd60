/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The I/O floor of an index update: writes files of the given sizes into DIR the way
 * kmodctl depmod publishes, and nothing else (no reading, no computing): each file written
 * over its spare (.spare.N, the file the generation before last published, kept) with its
 * writeback started, every one fdatasynced, the journal's commit record written over in place
 * and fdatasynced, the spares exchanged with the files in place (renameat2 RENAME_EXCHANGE),
 * the directory fsynced, the journal's idle record written. The first run in an empty DIR
 * makes the files, the spares and the journal, and fsyncs the directory before the commit.
 * bench/depmod.sh runs it with the sizes an update rewrites.
 *
 * Usage: publish-floor DIR SIZE... */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD 4096

static int fail(const char *what)
{
	fprintf(stderr, "publish-floor: %s: %s\n", what, strerror(errno));
	return 1;
}

static int pwrite_all(int fd, const char *p, size_t n)
{
	for (off_t at = 0; n > 0;) {
		ssize_t k = pwrite(fd, p, n, at);

		if (k < 0)
			return -1;
		p += k;
		n -= (size_t)k;
		at += k;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	size_t max = 0, n = (size_t)(argc > 2 ? argc - 2 : 0);
	int fds[64], dfd, jfd;
	bool made = false;
	char *buf, name[64], spare[64], record[RECORD];

	if (argc < 3 || n > 64) {
		fprintf(stderr, "Usage: publish-floor DIR SIZE... (at most 64)\n");
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		size_t s = strtoul(argv[2 + i], NULL, 10);
		max = s > max ? s : max;
	}
	buf = malloc(max + 1);
	if (!buf)
		return fail("malloc");
	/* not all zeros, like an index, and not the same bytes twice */
	for (size_t i = 0, seed = (size_t)getpid(); i < max; i++)
		buf[i] = (char)(i * 7 + i / 13 + seed);
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fail(argv[1]);
	for (size_t i = 0; i < n; i++) {
		size_t s = strtoul(argv[2 + i], NULL, 10);

		snprintf(spare, sizeof(spare), ".spare.%zu", i);
		fds[i] = openat(dfd, spare, O_WRONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			fds[i] = openat(dfd, spare, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			made = true;
		}
		if (fds[i] < 0)
			return fail(spare);
		if (pwrite_all(fds[i], buf, s) < 0 || ftruncate(fds[i], (off_t)s) < 0)
			return fail("write");
		(void)sync_file_range(fds[i], 0, 0, SYNC_FILE_RANGE_WRITE);
	}
	jfd = openat(dfd, "journal", O_RDWR | O_CLOEXEC);
	if (jfd < 0) {
		jfd = openat(dfd, "journal", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		made = true;
	}
	if (jfd < 0)
		return fail("journal");
	for (size_t i = 0; i < n; i++)
		if (fdatasync(fds[i]) < 0 || close(fds[i]) < 0)
			return fail("fdatasync");
	if (made && fsync(dfd) < 0)
		return fail("fsync");
	memset(record, 0, sizeof(record));
	snprintf(record, sizeof(record), "commit\n");
	if (pwrite_all(jfd, record, sizeof(record)) < 0 || fdatasync(jfd) < 0)
		return fail("journal");
	for (size_t i = 0; i < n; i++) {
		snprintf(spare, sizeof(spare), ".spare.%zu", i);
		snprintf(name, sizeof(name), "file.%zu", i);
		if (renameat2(dfd, spare, dfd, name, RENAME_EXCHANGE) < 0 &&
		    (errno != ENOENT || renameat(dfd, spare, dfd, name) < 0))
			return fail("rename");
	}
	if (fsync(dfd) < 0)
		return fail("fsync");
	snprintf(record, sizeof(record), "idle\n");
	if (pwrite_all(jfd, record, sizeof(record)) < 0)
		return fail("journal");
	free(buf);
	return 0;
}

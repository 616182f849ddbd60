/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The I/O floor of an index update: writes files of the given sizes into DIR the way
 * kmodctl depmod publishes (each to a temporary with its writeback started, every one
 * fdatasynced, a journal written and fsynced and renamed into place, the directory fsynced,
 * the temporaries renamed over the files, the directory fsynced, the journal removed), and
 * nothing else: no reading, no computing. bench/depmod.sh runs it with the sizes an update
 * rewrites.
 *
 * Usage: publish-floor DIR SIZE... */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "publish-floor: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char *argv[])
{
	size_t max = 0, n = (size_t)(argc > 2 ? argc - 2 : 0);
	int fds[64], dfd, jfd;
	char *buf, name[64], tmp[64];

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
	for (size_t i = 0; i < max; i++) /* not all zeros, like an index */
		buf[i] = (char)(i * 7 + i / 13);
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fail(argv[1]);
	for (size_t i = 0; i < n; i++) {
		size_t s = strtoul(argv[2 + i], NULL, 10), done = 0;

		snprintf(tmp, sizeof(tmp), ".tmp.%zu", i);
		fds[i] = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fds[i] < 0)
			return fail(tmp);
		while (done < s) {
			ssize_t k = write(fds[i], buf + done, s - done);
			if (k < 0)
				return fail("write");
			done += (size_t)k;
		}
		(void)sync_file_range(fds[i], 0, 0, SYNC_FILE_RANGE_WRITE);
	}
	for (size_t i = 0; i < n; i++)
		if (fdatasync(fds[i]) < 0 || close(fds[i]) < 0)
			return fail("fdatasync");
	jfd = openat(dfd, "journal.new", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (jfd < 0 || write(jfd, "journal\nend\n", 12) != 12 || fsync(jfd) < 0 || close(jfd) < 0 ||
	    renameat(dfd, "journal.new", dfd, "journal") < 0 || fsync(dfd) < 0)
		return fail("journal");
	for (size_t i = 0; i < n; i++) {
		snprintf(tmp, sizeof(tmp), ".tmp.%zu", i);
		snprintf(name, sizeof(name), "file.%zu", i);
		if (renameat(dfd, tmp, dfd, name) < 0)
			return fail("rename");
	}
	if (fsync(dfd) < 0 || unlinkat(dfd, "journal", 0) < 0)
		return fail("fsync");
	free(buf);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Package files from a repository are untrusted: verifying one (lead, signature header, main
 * header, payload digest) and listing its payload must fail cleanly on any input. */
#include <stdint.h>
#include <sys/mman.h>

#include "kmp.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_strv_free_ char **files = NULL;
	char path[64];
	size_t done = 0;

	if (kmp_init() < 0)
		return 0;
	fd = memfd_create("fuzz-kmp", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	while (done < size) {
		ssize_t k = write(fd, data + done, size - done);

		if (k <= 0)
			return 0;
		done += (size_t)k;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	(void)kmp_verify_file(path);
	(void)kmp_payload_list(path, &files);
	return 0;
}

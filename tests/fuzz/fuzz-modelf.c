/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modelf over arbitrary bytes: open, then walk every list; any outcome but a crash is fine.
 * Corpus: tests/fuzz/gen-modelf-corpus.py writes it. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "macros.h"
#include "modelf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_info(const char *key, size_t key_len, const char *value, void *u)
{
	size_t *n = u;

	*n += key_len + strlen(value);
	return 0;
}

static int on_export(const char *name, void *u)
{
	size_t *n = u;

	*n += strlen(name);
	return 0;
}

static int on_need(const char *name, uint64_t crc, char bind, void *u)
{
	size_t *n = u;

	*n += strlen(name) + (size_t)(crc & 1) + (bind == 'W');
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	ModElf *e = NULL;
	size_t n = 0;
	int fd;

	/* modelf reads files: the input goes to a memory file */
	fd = memfd_create("fuzz-modelf", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (size > 0 && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (modelf_open(AT_FDCWD, path, &e) >= 0) {
		(void)modelf_modinfo(e, on_info, &n);
		(void)modelf_exports(e, on_export, &n);
		(void)modelf_needs(e, on_need, &n);
		modelf_close(e);
	}
	close(fd);
	return n == SIZE_MAX;
}

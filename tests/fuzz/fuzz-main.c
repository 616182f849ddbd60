/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Regression driver for fuzz targets: feeds every file named on the command line (or every
 * file of the directories named) to LLVMFuzzerTestOneInput. Built with any compiler; the
 * sanitizer build turns a crash on a corpus file into a test failure. With libFuzzer (clang
 * -fsanitize=fuzzer) the same target source is used without this file. */
#include <dirent.h>
#include <stdint.h>

#include "fileio.h"
#include "macros.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *target, const char *path)
{
	_cleanup_free_ char *data = NULL;
	size_t size;
	int r;

	r = read_full_file(path, 16 * 1024 * 1024, &data, &size);
	if (r < 0) {
		printf("FAIL fuzz-%s:%s: cannot read: %s\n", target, path, errno_name_full(r));
		return 1;
	}
	LLVMFuzzerTestOneInput((const uint8_t *)data, size);
	printf("PASS fuzz-%s:%s\n", target, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	return 0;
}

int main(int argc, char *argv[])
{
	const char *target = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int failed = 0;

	target = startswith(target, "fuzz-") ?: target;
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *de;

		if (!d) {
			failed |= run_file(target, argv[i]);
			continue;
		}
		while ((de = readdir(d))) {
			_cleanup_free_ char *p = NULL;

			if (de->d_name[0] == '.')
				continue;
			p = path_join(argv[i], de->d_name);
			if (p)
				failed |= run_file(target, p);
		}
		closedir(d);
	}
	return failed;
}

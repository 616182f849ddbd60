/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tests.h"

TestCase test_cases[MAX_TESTS];
size_t n_test_cases;
jmp_buf test_jmp;
char test_why[512];
int test_result;

static int run_one(size_t i)
{
	test_result = 0;
	test_why[0] = 0;
	if (setjmp(test_jmp) == 0)
		test_cases[i].fn();
	return test_result;
}

int main(int argc, char *argv[])
{
	const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	size_t failed = 0, skipped = 0;

	for (size_t i = 0; i < n_test_cases; i++) {
		if (argc > 1 && !streq(argv[1], test_cases[i].name))
			continue;
		run_one(i);
		if (test_result == 0)
			printf("PASS %s:%s\n", prog, test_cases[i].name);
		else if (test_result == 2) {
			printf("SKIP %s:%s: %s\n", prog, test_cases[i].name, test_why);
			skipped++;
		} else {
			printf("FAIL %s:%s: %s\n", prog, test_cases[i].name, test_why);
			failed++;
		}
		fflush(stdout);
	}
	if (failed)
		return 1;
	if (n_test_cases > 0 && skipped == n_test_cases)
		return 77;
	return 0;
}

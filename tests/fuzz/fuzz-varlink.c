/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Varlink framing and message parsing: the bytes a client may send kmodd, split into
 * NUL-terminated messages, each parsed as a call and as a reply. */
#include <stdint.h>

#include "varlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	VarlinkBuffer b = { .max = 4096 };
	char *msg;
	size_t n;
	int r;

	/* in two chunks, as a socket may deliver them */
	if (varlink_buffer_feed(&b, data, size / 2) < 0 ||
	    varlink_buffer_feed(&b, data + size / 2, size - size / 2) < 0)
		goto out;
	while ((r = varlink_buffer_next(&b, &msg, &n)) > 0) {
		VarlinkCall c = {};
		VarlinkReply rep = {};
		const char *why = NULL;

		if (varlink_call_parse(msg, n, &c, &why) >= 0) {
			const char *s;
			bool v;
			char **l = NULL;

			(void)varlink_param_string(c.parameters, "modalias", &s);
			(void)varlink_param_bool(c.parameters, "dryRun", &v);
			if (varlink_param_strv(c.parameters, "modules", 16, 64, &l) >= 0)
				for (size_t i = 0; l[i]; i++)
					free(l[i]);
			free(l);
			free(varlink_format_call(c.method, c.parameters, c.more, c.oneway));
			varlink_call_done(&c);
		}
		if (varlink_reply_parse(msg, n, &rep, &why) >= 0) {
			free(varlink_format_reply(rep.parameters, rep.continues));
			varlink_reply_done(&rep);
		}
		free(msg);
	}
out:
	varlink_buffer_done(&b);
	return 0;
}

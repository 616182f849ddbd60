/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kmodd.conf and the table-driven INI parser it uses. */
#include <ctype.h>
#include <dirent.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>

#include "daemon-config.h"
#include "fileio.h"
#include "hashmap.h"
#include "strv.h"

#define CONFIG_FILE_MAX_SIZE (256u * 1024)
#define CONFIG_WARNINGS_MAX 100
#define CONFIG_LIST_MAX 1024

static const char *const auto_install_mode_table[_AUTO_INSTALL_MAX] = {
	[AUTO_INSTALL_ON] = "on",
	[AUTO_INSTALL_OFF] = "off",
	[AUTO_INSTALL_NOTIFY_ONLY] = "notify-only",
};

const char *auto_install_mode_to_string(AutoInstallMode m)
{
	return m >= 0 && m < _AUTO_INSTALL_MAX ? auto_install_mode_table[m] : NULL;
}

AutoInstallMode auto_install_mode_from_string(const char *s)
{
	for (int i = 0; i < _AUTO_INSTALL_MAX; i++)
		if (streq(s, auto_install_mode_table[i]))
			return i;
	/* booleans too, like systemd's tristate settings */
	if (streq(s, "yes") || streq(s, "true") || streq(s, "1"))
		return AUTO_INSTALL_ON;
	if (streq(s, "no") || streq(s, "false") || streq(s, "0"))
		return AUTO_INSTALL_OFF;
	return _AUTO_INSTALL_INVALID;
}

/* ---- generic parsers ---- */

int config_parse_bool(const char *value, void *dest)
{
	static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
	static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

	for (size_t i = 0; i < ELEMENTSOF(yes); i++)
		if (strcasecmp(value, yes[i]) == 0) {
			*(bool *)dest = true;
			return 0;
		}
	for (size_t i = 0; i < ELEMENTSOF(no); i++)
		if (strcasecmp(value, no[i]) == 0) {
			*(bool *)dest = false;
			return 0;
		}
	return -EINVAL;
}

int config_parse_unsigned(const char *value, void *dest)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)value[0]))
		return -EINVAL;
	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno == ERANGE || v > UINT_MAX)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	*(unsigned *)dest = (unsigned)v;
	return 0;
}

int config_parse_strv(const char *value, void *dest)
{
	char ***l = dest, **words = NULL;
	int r;

	if (!*value) {
		*l = strv_free(*l);
		return 0;
	}
	r = strv_split(value, " \t,", &words);
	if (r < 0)
		return r;
	if (strv_length(*l) + strv_length(words) > CONFIG_LIST_MAX) {
		strv_free(words);
		return -E2BIG;
	}
	STRV_FOREACH(w, words) {
		r = strv_extend(l, *w);
		if (r < 0) {
			strv_free(words);
			return r;
		}
	}
	strv_free(words);
	return 0;
}

int config_parse_string(const char *value, void *dest)
{
	char **s = dest, *copy = NULL;

	if (*value) {
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
	}
	free(*s);
	*s = copy;
	return 0;
}

static int warn(char ***warnings, const char *file, unsigned line, const char *fmt, ...)
	_printf_(4, 5);
static int warn(char ***warnings, const char *file, unsigned line, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	char *s;
	va_list ap;
	int r;

	if (!warnings || strv_length(*warnings) >= CONFIG_WARNINGS_MAX)
		return 0;
	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	if (asprintf(&s, "%s:%u: %s", file, line, msg) < 0)
		return -ENOMEM;
	return strv_consume(warnings, s);
}

static char *strip(char *s)
{
	char *e;

	while (*s && isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* Printable for a message: control characters would forge log lines. */
static void sanitize(char *s, size_t max)
{
	if (strlen(s) > max)
		strcpy(s + max - 3, "...");
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			*s = '?';
}

int config_parse_table(const ConfigItem *table, size_t n_table, void *base, const char *file,
		       const char *text, size_t size, char ***warnings)
{
	_cleanup_free_ char *copy = NULL, *section = NULL;
	char *p, *next;
	unsigned line = 0;
	int r;

	if (size > CONFIG_FILE_MAX_SIZE)
		return warn(warnings, file, 0, "file larger than %u bytes, ignoring it",
			    CONFIG_FILE_MAX_SIZE) ?: -EFBIG;
	copy = malloc(size + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, size);
	copy[size] = 0;
	if (strlen(copy) != size)
		return warn(warnings, file, 0, "NUL byte in the file, ignoring it") ?: -EBADMSG;

	for (p = copy; p; p = next) {
		char *l, *eq, *key, *value;
		bool found = false, section_known = false;

		next = strchr(p, '\n');
		if (next)
			*next++ = 0;
		line++;
		l = strip(p);
		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']');

			if (!end || end[1] || end == l + 1) {
				sanitize(l, 80);
				r = warn(warnings, file, line, "malformed section header '%s', ignoring", l);
				if (r < 0)
					return r;
				free(section);
				section = strdup(""); /* keys below it are ignored too */
				if (!section)
					return -ENOMEM;
				continue;
			}
			*end = 0;
			free(section);
			section = strdup(l + 1);
			if (!section)
				return -ENOMEM;
			for (size_t i = 0; i < n_table; i++)
				if (streq(table[i].section, section))
					section_known = true;
			if (!section_known) {
				sanitize(l + 1, 80);
				r = warn(warnings, file, line, "unknown section [%s], ignoring", l + 1);
				if (r < 0)
					return r;
			}
			continue;
		}
		eq = strchr(l, '=');
		if (!eq) {
			sanitize(l, 80);
			r = warn(warnings, file, line, "expected KEY=VALUE, got '%s', ignoring", l);
			if (r < 0)
				return r;
			continue;
		}
		*eq = 0;
		key = strip(l);
		value = strip(eq + 1);
		if (!section) {
			r = warn(warnings, file, line, "assignment outside of a section, ignoring");
			if (r < 0)
				return r;
			continue;
		}
		if (!*section)
			continue;
		for (size_t i = 0; i < n_table; i++) {
			if (!streq(table[i].section, section))
				continue;
			section_known = true;
			if (!streq(table[i].key, key))
				continue;
			found = true;
			r = table[i].parse(value, (char *)base + table[i].offset);
			if (r == -ENOMEM)
				return r;
			if (r < 0) {
				sanitize(value, 80);
				r = warn(warnings, file, line, "invalid value for %s=: '%s', ignoring",
					 key, value);
				if (r < 0)
					return r;
			}
			break;
		}
		if (!found && section_known) {
			sanitize(key, 80);
			r = warn(warnings, file, line, "unknown key %s= in [%s], ignoring", key, section);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* ---- files ---- */

static int add_dropins(Hashmap *seen, const char *dir, const char *suffix, char ***files)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;

	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : negative_errno();
	while ((de = readdir(d))) {
		char *p;

		if (de->d_name[0] == '.' || !endswith(de->d_name, suffix) ||
		    hashmap_contains(seen, de->d_name))
			continue;
		p = path_join(dir, de->d_name);
		if (!p) {
			r = -ENOMEM;
			break;
		}
		/* the map's key is the file name inside p */
		r = hashmap_put(seen, strrchr(p, '/') + 1, p);
		if (r < 0) {
			free(p);
			break;
		}
		r = strv_extend(files, p);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

static int compare_basename(const void *a, const void *b)
{
	const char *x = strrchr(*(char *const *)a, '/'), *y = strrchr(*(char *const *)b, '/');

	return strcmp(x ? x + 1 : *(char *const *)a, y ? y + 1 : *(char *const *)b);
}

int config_files(const char *root, const char *main_rel, const char *dropin_rel, const char *suffix,
		 char ***ret)
{
	static const char *const prefixes[] = { "etc", "run", "usr/lib" };
	_cleanup_hashmap_free_ Hashmap *seen = hashmap_new(NULL, free);
	_cleanup_strv_free_ char **files = NULL, **dropins = NULL;
	int r;

	if (!seen)
		return -ENOMEM;
	if (main_rel) {
		char *p = path_join(root, "etc", main_rel);

		if (!p)
			return -ENOMEM;
		if (access(p, F_OK) == 0)
			r = strv_consume(&files, p);
		else {
			free(p);
			r = 0;
		}
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
		_cleanup_free_ char *dir = path_join(root, prefixes[i], dropin_rel);

		if (!dir)
			return -ENOMEM;
		r = add_dropins(seen, dir, suffix, &dropins);
		if (r < 0)
			return r;
	}
	if (dropins)
		qsort(dropins, strv_length(dropins), sizeof(char *), compare_basename);
	STRV_FOREACH(d, dropins) {
		r = strv_extend(&files, *d);
		if (r < 0)
			return r;
	}
	if (!files) {
		files = calloc(1, sizeof(char *));
		if (!files)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(files);
	return 0;
}

/* ---- kmodd.conf ---- */

static int parse_auto_install(const char *value, void *dest)
{
	AutoInstallMode m = auto_install_mode_from_string(value);

	if (m < 0)
		return m;
	*(AutoInstallMode *)dest = m;
	return 0;
}

static int parse_buses(const char *value, void *dest)
{
	_cleanup_strv_free_ char **words = NULL;
	int r;

	r = strv_split(value, " \t,", &words);
	if (r < 0)
		return r;
	STRV_FOREACH(w, words) {
		if (strlen(*w) > 32)
			return -EINVAL;
		for (const char *c = *w; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
				return -EINVAL;
	}
	return config_parse_strv(value, dest);
}

static int parse_vendors(const char *value, void *dest)
{
	_cleanup_strv_free_ char **words = NULL;
	int r;

	r = strv_split(value, " \t,", &words);
	if (r < 0)
		return r;
	STRV_FOREACH(w, words) {
		const char *colon = strchr(*w, ':');
		size_t n;

		if (!colon || colon == *w)
			return -EINVAL;
		n = strlen(colon + 1);
		if (n == 0 || n > 8)
			return -EINVAL;
		for (const char *c = colon + 1; *c; c++)
			if (!isxdigit((unsigned char)*c))
				return -EINVAL;
	}
	return config_parse_strv(value, dest);
}

static int parse_positive(const char *value, void *dest)
{
	unsigned v;
	int r;

	r = config_parse_unsigned(value, &v);
	if (r < 0)
		return r;
	if (v == 0 || v > 1000000)
		return -ERANGE;
	*(unsigned *)dest = v;
	return 0;
}

static int parse_message_size(const char *value, void *dest)
{
	unsigned v;
	int r;

	r = config_parse_unsigned(value, &v);
	if (r < 0)
		return r;
	if (v < 1024 || v > 16u * 1024 * 1024)
		return -ERANGE;
	*(unsigned *)dest = v;
	return 0;
}

static const ConfigItem daemon_config_table[] = {
	{ "Daemon", "AutoInstall", parse_auto_install, offsetof(DaemonConfig, auto_install) },
	{ "Daemon", "AllowedBuses", parse_buses, offsetof(DaemonConfig, allowed_buses) },
	{ "Daemon", "AllowedVendors", parse_vendors, offsetof(DaemonConfig, allowed_vendors) },
	{ "Daemon", "DeniedModules", config_parse_strv, offsetof(DaemonConfig, denied_modules) },
	{ "Daemon", "RequireSignature", config_parse_bool, offsetof(DaemonConfig, require_signature) },
	{ "Daemon", "QueueSize", parse_positive, offsetof(DaemonConfig, queue_size) },
	{ "Daemon", "NegativeCacheSec", config_parse_unsigned, offsetof(DaemonConfig, negative_cache_sec) },
	{ "Daemon", "IdleExitSec", config_parse_unsigned, offsetof(DaemonConfig, idle_exit_sec) },
	{ "Daemon", "MaxConnections", parse_positive, offsetof(DaemonConfig, max_connections) },
	{ "Daemon", "MaxMessageSize", parse_message_size, offsetof(DaemonConfig, max_message_size) },
};

void daemon_config_init(DaemonConfig *c)
{
	*c = (DaemonConfig){
		.auto_install = AUTO_INSTALL_ON,
		.queue_size = 256,
		.negative_cache_sec = 3600,
		.idle_exit_sec = 60,
		.max_connections = 64,
		.max_message_size = 64u * 1024,
	};
}

void daemon_config_done(DaemonConfig *c)
{
	strv_free(c->allowed_buses);
	strv_free(c->allowed_vendors);
	strv_free(c->denied_modules);
	*c = (DaemonConfig){};
}

int daemon_config_parse(DaemonConfig *c, const char *file, const char *text, size_t size,
			char ***warnings)
{
	return config_parse_table(daemon_config_table, ELEMENTSOF(daemon_config_table), c, file,
				  text, size, warnings);
}

int daemon_config_load(DaemonConfig *c, const char *root, char ***warnings)
{
	_cleanup_strv_free_ char **files = NULL;
	int r;

	daemon_config_init(c);
	r = config_files(root, "kmodd/kmodd.conf", "kmodd/kmodd.conf.d", ".conf", &files);
	if (r < 0)
		return r;
	STRV_FOREACH(f, files) {
		_cleanup_free_ char *text = NULL;
		size_t size;

		r = read_full_file(*f, CONFIG_FILE_MAX_SIZE, &text, &size);
		if (r < 0) {
			char *s;

			if (asprintf(&s, "%s: cannot read: %s, ignoring", *f, strerror(-r)) < 0 ||
			    strv_consume(warnings, s) < 0)
				return -ENOMEM;
			continue;
		}
		r = daemon_config_parse(c, *f, text, size, warnings);
		if (r == -ENOMEM)
			return r;
	}
	return 0;
}

/* The vendor id of a modalias, lower-case hex without leading zeros: pci:v00008086d... ->
 * "8086", usb:v0BDAp... -> "bda". */
static bool modalias_vendor(const char *modalias, char *bus, size_t bus_size, char *vendor,
			    size_t vendor_size)
{
	const char *colon = strchr(modalias, ':'), *v;
	size_t n = 0;

	if (!colon || (size_t)(colon - modalias) >= bus_size)
		return false;
	memcpy(bus, modalias, colon - modalias);
	bus[colon - modalias] = 0;
	size_t width;

	v = colon + 1;
	if (*v != 'v')
		return false;
	v++;
	/* fixed width: usb:vXXXXpXXXX..., pci:vXXXXXXXXdXXXXXXXX... and the like */
	width = streq(bus, "usb") ? 4 : 8;
	for (size_t i = 0; i < width; i++)
		if (!isxdigit((unsigned char)v[i]))
			return false;
	while (width > 1 && *v == '0') {
		v++;
		width--;
	}
	for (; n < width && n + 1 < vendor_size; n++)
		vendor[n] = tolower((unsigned char)v[n]);
	vendor[n] = 0;
	return n > 0;
}

const char *daemon_config_check_modalias(const DaemonConfig *c, const char *modalias,
					 char *buf, size_t size)
{
	const char *colon = strchr(modalias, ':');
	char bus[33], vendor[9];

	if (!colon || colon == modalias) {
		snprintf(buf, size, "malformed modalias");
		return buf;
	}
	if (c->allowed_buses) {
		bool ok = false;

		STRV_FOREACH(b, c->allowed_buses)
			if (strlen(*b) == (size_t)(colon - modalias) &&
			    strncmp(*b, modalias, colon - modalias) == 0)
				ok = true;
		if (!ok) {
			snprintf(buf, size, "bus %.*s is not in AllowedBuses=",
				 (int)(colon - modalias) > 32 ? 32 : (int)(colon - modalias), modalias);
			return buf;
		}
	}
	if (c->allowed_vendors) {
		bool ok = false;

		if (modalias_vendor(modalias, bus, sizeof(bus), vendor, sizeof(vendor)))
			STRV_FOREACH(v, c->allowed_vendors) {
				const char *want = strchr(*v, ':') + 1;

				while (*want == '0' && want[1])
					want++;
				if (strlen(bus) == (size_t)(strchr(*v, ':') - *v) &&
				    strncmp(*v, bus, strlen(bus)) == 0 && strcasecmp(want, vendor) == 0)
					ok = true;
			}
		if (!ok) {
			snprintf(buf, size, "its vendor is not in AllowedVendors=");
			return buf;
		}
	}
	return NULL;
}

bool daemon_config_module_denied(const DaemonConfig *c, const char *module)
{
	STRV_FOREACH(d, c->denied_modules)
		if (fnmatch(*d, module, 0) == 0)
			return true;
	return false;
}

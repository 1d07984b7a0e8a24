/* libFuzzer target for the /proc parsers: a mountinfo line, /proc/PID/stat, a maps line and a
 * command line. The first byte picks the parser. Besides any text, each gets the kernel's own
 * format around hostile parts (a mount point or a process name is whatever a user chose), and
 * must read back exactly what was put in. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "fuzz.h"
#include "procs.h"

static void check_mount(const struct procs_mount *m)
{
	size_t n = strnlen(m->fstype, sizeof(m->fstype));

	FUZZ_CHECK(n > 0 && n < sizeof(m->fstype));
	FUZZ_CHECK(!strchr(m->fstype, ' '));
	FUZZ_CHECK(strnlen(m->mountpoint, sizeof(m->mountpoint)) < sizeof(m->mountpoint));
}

/* As fs/proc_namespace.c writes it: space, tab, newline and backslash as \ooo. */
static char *escape(const char *s)
{
	char *out = malloc(strlen(s) * 4 + 1), *o = out;

	FUZZ_CHECK(out);
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\')
			o += sprintf(o, "\\%03o", (unsigned char)*s);
		else
			*o++ = *s;
	}
	*o = '\0';
	return out;
}

static void mountinfo_roundtrip(const char *path, uint64_t id, unsigned major, unsigned minor)
{
	struct procs_mount m;
	char *escaped = escape(path), *line;
	size_t size = strlen(escaped) * 2 + 256;
	int r;

	line = malloc(size);
	FUZZ_CHECK(line);
	snprintf(line, size,
		 "%" PRIu64 " 1 %u:%u %s %s rw,nosuid,nodev shared:42 master:1 - fuse.jobfs "
		 "jobfs rw,user_id=0",
		 id, major, minor, escaped, escaped);
	r = procs_mountinfo_parse(line, &m);
	if (strlen(path) < sizeof(m.mountpoint) && path[0]) {
		FUZZ_CHECK(r == 0);
		check_mount(&m);
		FUZZ_CHECK(strcmp(m.mountpoint, path) == 0);
		FUZZ_CHECK(strcmp(m.fstype, "fuse.jobfs") == 0);
		FUZZ_CHECK(m.mnt_id == id && m.dev_major == major && m.dev_minor == minor);
	}
	free(line);
	free(escaped);
}

static void stat_roundtrip(const char *comm, uint64_t start)
{
	char *text;
	size_t size = strlen(comm) + 512;
	uint64_t ticks = 0;

	text = malloc(size);
	FUZZ_CHECK(text);
	/* fields 3 to 21, then 22 (starttime), then the rest */
	snprintf(text, size,
		 "4242 (%s) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 %" PRIu64
		 " 1234567 89 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
		 comm, start);
	FUZZ_CHECK(procs_stat_parse_start(text, &ticks) == 0);
	FUZZ_CHECK(ticks == start);
	free(text);
}

static void maps_roundtrip(const char *path, unsigned major, unsigned minor)
{
	char *line;
	size_t size = strlen(path) + 128;
	unsigned got_major = 0, got_minor = 0;

	line = malloc(size);
	FUZZ_CHECK(line);
	snprintf(line, size, "7f0123456000-7f0123457000 r-xp 00001000 %02x:%02x 131 %s\n", major,
		 minor, path);
	FUZZ_CHECK(procs_maps_line_dev(line, &got_major, &got_minor) == 0);
	FUZZ_CHECK(got_major == major && got_minor == minor);
	free(line);
}

static void check_cmdline(const uint8_t *raw, size_t len, size_t size)
{
	char *buf = malloc(size);
	size_t trimmed = len, out;

	FUZZ_CHECK(buf);
	procs_cmdline_format((const char *)raw, len, buf, size);
	while (trimmed > 0 && raw[trimmed - 1] == 0)
		trimmed--;
	out = strnlen(buf, size);
	FUZZ_CHECK(out < size);
	FUZZ_CHECK(out == (trimmed < size - 1 ? trimmed : size - 1));
	for (size_t i = 0; i < out; i++) {
		unsigned char c = (unsigned char)buf[i];

		FUZZ_CHECK(c >= 0x20 && c != 0x7f); /* safe to print on a terminal line */
		FUZZ_CHECK(raw[i] == 0			      ? c == ' '
			   : raw[i] >= 0x20 && raw[i] != 0x7f ? c == raw[i]
							      : c == '?');
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct procs_mount m;
	uint64_t id = 0, ticks;
	unsigned major, minor;
	char *text;

	if (size < 4)
		return 0;
	for (size_t i = 1; i < 4; i++)
		id = id << 8 | data[i];
	major = data[1];
	minor = data[2];
	text = fuzz_cstring(data + 4, size - 4);
	if (!text)
		return 0;
	switch (data[0] % 5) {
	case 0: /* any line */
		if (procs_mountinfo_parse(text, &m) == 0)
			check_mount(&m);
		procs_maps_line_dev(text, &major, &minor);
		procs_stat_parse_start(text, &ticks);
		break;
	case 1:
		mountinfo_roundtrip(text, id, major, minor);
		break;
	case 2:
		stat_roundtrip(text, id * 1000003u + data[3]);
		break;
	case 3:
		maps_roundtrip(text, major, minor);
		break;
	case 4:
		check_cmdline(data + 4, size - 4, (size_t)data[1] + 1);
		break;
	}
	free(text);
	return 0;
}

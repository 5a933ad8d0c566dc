/*
 * util.c: small helpers every stage uses. Nothing here knows about
 * PostgreSQL except conninfo_redact, which exists so that a password can
 * never reach a log or a report by accident.
 */
#include "core/util.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/wrapper.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <wordexp.h>
#include <unistd.h>
#include <zlib.h>

char *path_join(const char *a, const char *b)
{
	size_t la;

	if (b[0] == '/' || !a || !*a)
		return xstrdup(b);
	la = strlen(a);
	while (la > 1 && a[la - 1] == '/')
		la--;
	return xstrfmt("%.*s/%s", (int)la, a, b);
}

char *path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

char *path_absolute(const char *path)
{
	char cwd[4096];

	if (path[0] == '/')
		return xstrdup(path);
	if (!getcwd(cwd, sizeof(cwd)))
		return xstrdup(path);
	if (!strcmp(path, "."))
		return xstrdup(cwd);
	if (!strncmp(path, "./", 2))
		path += 2;
	return path_join(cwd, path);
}

char *path_canonical(const char *path)
{
	char *abs = path_absolute(path), *head = xstrdup(abs), *real = NULL;
	struct strbuf sb = STRBUF_INIT;
	size_t cut = strlen(head);
	const char *rest;

	/* the longest part that exists, resolved; the rest as written */
	while (!(real = realpath(head, NULL)) && cut > 1) {
		while (cut > 1 && head[cut - 1] != '/')
			cut--;
		if (cut > 1)
			cut--;
		head[cut] = '\0';
	}
	strbuf_addstr(&sb, real ? real : "/");
	rest = abs + (real ? cut : 0);
	for (const char *p = rest; *p;) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (!n)
			break;
		if (n == 2 && !strncmp(p, "..", 2)) {
			while (sb.len > 1 && sb.buf[sb.len - 1] != '/')
				sb.len--;
			if (sb.len > 1)
				sb.len--;
			sb.buf[sb.len] = '\0';
		} else if (!(n == 1 && *p == '.')) {
			if (sb.len > 1)
				strbuf_addch(&sb, '/');
			strbuf_add(&sb, p, n);
		}
		p += n;
	}
	free(real);
	free(head);
	free(abs);
	return strbuf_detach(&sb);
}

int path_within(const char *path, const char *folder)
{
	char *p = path_canonical(path), *f = path_canonical(folder);
	size_t n = strlen(f);
	int r = !strncmp(p, f, n) && (p[n] == '/' || !p[n] || (n == 1 && f[0] == '/'));

	free(p);
	free(f);
	return r;
}

int is_dir(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

int is_file(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISREG(st.st_mode);
}

int mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);

	for (char *s = p + 1; ; s++) {
		if (*s == '/' || !*s) {
			char c = *s;

			*s = '\0';
			if (mkdir(p, mode) && errno != EEXIST) {
				int e = errno;

				ts_error_set(TS_EXIT_ENV, "could not create directory \"%s\": %s",
					     p, strerror(e));
				free(p);
				return -1;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int list_names(const char *dir, const char *suffix, struct strvec *out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t first = out->nr, sl = strlen(suffix);

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (de->d_name[0] != '.' && l > sl && !strcmp(de->d_name + l - sl, suffix))
			strvec_push(out, de->d_name);
	}
	closedir(d);
	if (out->nr > first + 1)
		qsort(out->v + first, out->nr - first, sizeof(*out->v), name_cmp);
	return 0;
}

int list_sql_files(const char *dir, const char *what, struct strvec *out)
{
	if (list_names(dir, ".sql", out))
		return ts_error_set(TS_EXIT_USAGE, "could not open %s folder \"%s\": %s", what, dir,
				    strerror(errno));
	return 0;
}

int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_size;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(path) && errno != ENOENT ? -1 : 0;
	return unlink(path) && errno != ENOENT ? -1 : 0;
}

int rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st))
		return 0;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) ? ts_error_set(TS_EXIT_ENV, "could not remove \"%s\": %s",
						   path, strerror(errno)) : 0;
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS))
		return ts_error_set(TS_EXIT_ENV, "could not remove \"%s\": %s",
				    path, strerror(errno));
	return 0;
}

int write_file(const char *path, const char *data, size_t len)
{
	char *tmp = xstrfmt("%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t off = 0;

	if (fd < 0)
		goto fail;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			goto fail;
		}
		off += (size_t)n;
	}
	if (close(fd) || rename(tmp, path))
		goto fail;
	free(tmp);
	return 0;
fail:
	ts_error_set(TS_EXIT_ENV, "could not write file \"%s\": %s", path, strerror(errno));
	unlink(tmp);
	free(tmp);
	return -1;
}

char *shell_quote(const char *w)
{
	struct strbuf sb = STRBUF_INIT;
	int plain = *w != '\0';

	for (const char *p = w; *p; p++)
		plain &= isalnum((unsigned char)*p) || strchr("_@%+=:,./-", *p) != NULL;
	if (plain)
		return xstrdup(w);
	strbuf_addch(&sb, '\'');
	for (; *w; w++) {
		if (*w == '\'')
			strbuf_addstr(&sb, "'\\''");
		else
			strbuf_addch(&sb, *w);
	}
	strbuf_addch(&sb, '\'');
	return strbuf_detach(&sb);
}

int split_command(const char *command, struct strvec *out)
{
	wordexp_t we;

	if (wordexp(command, &we, WRDE_NOCMD | WRDE_UNDEF))
		return -1;
	for (size_t i = 0; out && i < we.we_wordc; i++)
		strvec_push(out, we.we_wordv[i]);
	wordfree(&we);
	return we.we_wordc ? 0 : -1;
}

double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void sort_doubles(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
}

void iso_time(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int bind_loopback(int port, int *out_port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ok;

	if (fd < 0)
		return -1;
	/* as PostgreSQL binds: a port in TIME_WAIT is free, a listener is not */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	ok = !bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (ok && out_port && !getsockname(fd, (struct sockaddr *)&sa, &sl))
		*out_port = ntohs(sa.sin_port);
	close(fd);
	return ok ? 0 : -1;
}

int port_pick_free(void)
{
	int port = 0;

	/* Skip ports in the range PostgreSQL users tend to run on. */
	for (int i = 0; i < 50; i++) {
		if (bind_loopback(0, &port))
			return 0;
		if (port < 5400 || port > 5500)
			return port;
	}
	return port;
}

int port_in_use(int port)
{
	return bind_loopback(port, NULL) != 0;
}

int edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int *row = xcalloc(lb + 1, sizeof(int));
	int r;

	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int diag = row[0];

		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int up = row[j];
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int best = diag + cost;

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	r = row[lb];
	free(row);
	return r;
}

const char *nearest_word(const char *word, const char *const *cands)
{
	const char *best = NULL;
	int bestd = INT_MAX;

	for (size_t i = 0; cands[i]; i++) {
		int d = edit_distance(word, cands[i]);

		if (d < bestd) {
			bestd = d;
			best = cands[i];
		}
	}
	/* only what is plausibly a typo */
	return bestd <= (int)(strlen(word) / 2) + 1 ? best : NULL;
}

char *conninfo_redact(const char *conninfo)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	struct strbuf sb = STRBUF_INIT;

	if (!opts) {
		PQfreemem(err);
		return xstrdup("(unparsable connection string)");
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (sb.len)
			strbuf_addch(&sb, ' ');
		if (!strcmp(o->keyword, "password"))
			strbuf_addstr(&sb, "password=***");
		else
			strbuf_addf(&sb, "%s=%s", o->keyword, o->val);
	}
	PQconninfoFree(opts);
	return strbuf_detach(&sb);
}

void crc32_hex(const char *data, size_t len, char out[9])
{
	uLong c = crc32(0L, Z_NULL, 0);

	c = crc32(c, (const Bytef *)data, (uInt)len);
	snprintf(out, 9, "%08lx", (unsigned long)c);
}

void free_strings(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* The length of the UTF-8 sequence at s (of n bytes), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

size_t utf8_invalid_at(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq((const unsigned char *)s + i, n - i);

		if (!l)
			return i;
		i += l;
	}
	return n;
}

char *quote_bytes(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	size_t n = s ? strlen(s) : 0;

	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq((const unsigned char *)s + i, n - i);

		if (!l || (unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			strbuf_addf(&sb, "\\x%02x", (unsigned char)s[i]);
			i++;
		} else {
			strbuf_add(&sb, s + i, l);
			i += l;
		}
	}
	return strbuf_detach(&sb);
}

int check_text(const char *name, const char *text, size_t len, const char *what)
{
	int line = 1;

	if (!len)
		return ts_error_set(TS_EXIT_USAGE, "%s: the file is empty (expected %s)", name, what);
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)text[i];
		size_t l = utf8_seq((const unsigned char *)text + i, len - i);

		if (!c)
			return ts_error_set(TS_EXIT_USAGE, "%s:%d: a NUL byte at byte %zu: not a text file (expected %s)",
					    name, line, i, what);
		if (!l)
			return ts_error_set(TS_EXIT_USAGE, "%s:%d: byte 0x%02x at byte %zu is not UTF-8 text (expected %s)",
					    name, line, c, i, what),
			       ts_error_hint("save the file as UTF-8");
		if (c < 0x20 && c != '\n' && c != '\t' && c != '\r' && c != '\f')
			return ts_error_set(TS_EXIT_USAGE, "%s:%d: control character 0x%02x at byte %zu: not a text file (expected %s)",
					    name, line, c, i, what);
		if (c == '\n')
			line++;
		i += l;
	}
	return 0;
}

int read_text_file(struct strbuf *sb, const char *path, const char *what)
{
	struct stat st;

	if (stat(path, &st))
		return ts_error_set(TS_EXIT_USAGE, "could not open \"%s\": %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ts_error_set(TS_EXIT_USAGE, "\"%s\" is %s, not a file (expected %s)", path,
				    S_ISDIR(st.st_mode) ? "a folder" : "a special file", what);
	if (strbuf_read_file(sb, path))
		return ts_error_set(TS_EXIT_USAGE, "could not read \"%s\": %s", path, strerror(errno));
	return check_text(path, sb->buf, sb->len, what);
}

int check_text_file(const char *path, const char *what)
{
	struct stat st;
	void *map;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ts_error_set(TS_EXIT_USAGE, "could not open \"%s\": %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return ts_error_set(TS_EXIT_USAGE, "\"%s\" is %s, not a file (expected %s)", path,
				    S_ISDIR(st.st_mode) ? "a folder" : "a special file", what);
	}
	if (!st.st_size) {
		close(fd);
		return check_text(path, "", 0, what);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return ts_error_set(TS_EXIT_USAGE, "could not read \"%s\": %s", path, strerror(errno));
	r = check_text(path, map, (size_t)st.st_size, what);
	munmap(map, (size_t)st.st_size);
	return r;
}

char *url_encode(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || strchr("-._~", c))
			strbuf_addch(&sb, (char)c);
		else
			strbuf_addf(&sb, "%%%02X", c);
	}
	return strbuf_detach(&sb);
}

void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int parse_duration_ms(const char *s, int *ms)
{
	char *end;
	double v = strtod(s, &end), unit = 1;

	while (*end == ' ')
		end++;
	if (!strcmp(end, "s"))
		unit = 1000;
	else if (!strcmp(end, "min"))
		unit = 60000;
	else if (!strcmp(end, "h"))
		unit = 3600000;
	else if (*end && strcmp(end, "ms"))
		return -1;
	if (end == s || !isfinite(v) || v < 0 || v * unit > 24 * 3600000.0)
		return -1;
	*ms = (int)(v * unit);
	return 0;
}

/*
 * util: paths and files, folders listed, commands split into words,
 * clocks, ports, checksums, and the redaction of connection strings.
 * Every function that can fail returns -1 and sets the error slot.
 * (Allocation is wrapper.h; formatting into a new string, strbuf.h.)
 */
#ifndef TS_UTIL_H
#define TS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct strbuf;

/* Joins a and b with one '/', unless b is absolute; returns a new string. */
char *path_join(const char *a, const char *b);
/* Directory part of path (new string; "." when there is none). */
char *path_dirname(const char *path);
/* Absolute form of path, resolved against the current directory if relative. */
char *path_absolute(const char *path);
/*
 * The absolute path with every link resolved where it exists, and ".",
 * ".." and doubled slashes taken out of the part that does not exist yet
 * (new string): two names of one place compare equal.
 */
char *path_canonical(const char *path);
/* 1 when path is folder or lies inside it (both canonical). */
int path_within(const char *path, const char *folder);
int is_dir(const char *path);
int is_file(const char *path);
/* mkdir -p with the given mode; -1 and an error (class TS_EXIT_ENV) on failure. */
int mkdir_p(const char *path, mode_t mode);
struct strvec;
/*
 * Appends the *.sql files of dir (names only, no dot files) to out, sorted
 * by name. A folder that cannot be opened is a TS_EXIT_USAGE error naming
 * it as the `what` folder ("migrations", "scenarios").
 */
int list_sql_files(const char *dir, const char *what, struct strvec *out);
/*
 * Appends the names in dir that end with suffix ("" for any; no dot files)
 * to out, sorted; -1 (errno set, no error) when dir cannot be opened.
 */
int list_names(const char *dir, const char *suffix, struct strvec *out);
/* The size of a file, 0 when there is none. */
off_t file_size(const char *path);
/* s ends with suffix. */
int ends_with(const char *s, const char *suffix);
/*
 * Splits a command line into words, quotes as a shell would, but with no
 * shell: no $(...), no unset variables. Appends them to out (NULL: only
 * checks); -1 when it cannot, or there is no word.
 */
int split_command(const char *command, struct strvec *out);
/* A word as split_command reads it back: as is when plain, else in single quotes (new string). */
char *shell_quote(const char *word);
#define TS_COMMAND_HINT "twinstage runs commands without a shell: no pipes, no $(...), no unset variables"
/* Frees a NULL-terminated array of strings and the array (as libguestfs returns them); NULL is fine. */
void free_strings(char **v);
/* rm -rf; a missing path is fine. */
int rm_rf(const char *path);
/* Writes a whole file atomically (temp file + rename). */
int write_file(const char *path, const char *data, size_t len);

/*
 * Text someone wrote: not empty, no NUL byte, valid UTF-8, no control
 * character but tab, CR, LF and form feed. Otherwise a TS_EXIT_USAGE error
 * "name:line: byte 0xe9 at byte 120 is not UTF-8 text (expected what)".
 */
int check_text(const char *name, const char *text, size_t len, const char *what);
/* Reads a regular file (not a folder) and checks it as above. */
int read_text_file(struct strbuf *sb, const char *path, const char *what);
/* The same check without keeping the text (a seed may be large). */
int check_text_file(const char *path, const char *what);
/* The offset of the first byte of s (n bytes) that is not UTF-8, or n. */
size_t utf8_invalid_at(const char *s, size_t n);
/* s with bytes that are not printable UTF-8 written as \xNN, safe for a terminal (new string). */
char *quote_bytes(const char *s);

/* Milliseconds from a monotonic clock. */
double now_ms(void);
/* Sorts v (n values) in increasing order. */
void sort_doubles(double *v, size_t n);
/* Wall clock as an ISO 8601 UTC string into buf (at least 32 bytes). */
void iso_time(char *buf, size_t len);

/* A TCP port on 127.0.0.1 that was free a moment ago; 0 on failure. */
int port_pick_free(void);
/* 1 when something listens on (or holds) 127.0.0.1:port. */
int port_in_use(int port);

/*
 * A duration as people write it, "60s", "500ms", "30min", "1h" (a bare
 * number is milliseconds), at most 24 h, into *ms. -1 when it is not one.
 */
int parse_duration_ms(const char *s, int *ms);
#define TS_DURATION_FORMS "a duration such as 60s, 500ms, 30min or 1h, at most 24h"

/* Levenshtein distance, for "did you mean" suggestions. */
int edit_distance(const char *a, const char *b);
/* The candidate (NULL-terminated) nearest to word, when plausibly a typo of it; else NULL. */
const char *nearest_word(const char *word, const char *const *cands);
/* s percent-encoded for a URL's path or user part (new string). */
char *url_encode(const char *s);
/* A connection string with any password replaced by "***" (new string). */
char *conninfo_redact(const char *conninfo);
/* SHA-256 of a buffer (OpenSSL's), as lowercase hex in out (65 bytes). */
void sha256_hex(const void *data, size_t len, char out[65]);
/* CRC-32 of a buffer, as hex text in out (9 bytes). */
void crc32_hex(const char *data, size_t len, char out[9]);

#endif

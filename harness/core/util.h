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
/*
 * Splits a command line into words, quotes as a shell would, but with no
 * shell: no $(...), no unset variables. Appends them to out (NULL: only
 * checks); -1 when it cannot, or there is no word.
 */
int split_command(const char *command, struct strvec *out);
#define TS_COMMAND_HINT "twinstage runs commands without a shell: no pipes, no $(...), no unset variables"
/* Frees a NULL-terminated array of strings and the array (as libguestfs returns them); NULL is fine. */
void free_strings(char **v);
/* rm -rf; a missing path is fine. */
int rm_rf(const char *path);
/* Writes a whole file atomically (temp file + rename). */
int write_file(const char *path, const char *data, size_t len);

/* Milliseconds from a monotonic clock. */
double now_ms(void);
/* Wall clock as an ISO 8601 UTC string into buf (at least 32 bytes). */
void iso_time(char *buf, size_t len);

/* A TCP port on 127.0.0.1 that was free a moment ago; 0 on failure. */
int port_pick_free(void);
/* 1 when something listens on (or holds) 127.0.0.1:port. */
int port_in_use(int port);

/* Levenshtein distance, for "did you mean" suggestions. */
int edit_distance(const char *a, const char *b);
/* A connection string with any password replaced by "***" (new string). */
char *conninfo_redact(const char *conninfo);
/* CRC-32 of a buffer, as hex text in out (9 bytes). */
void crc32_hex(const char *data, size_t len, char out[9]);

#endif

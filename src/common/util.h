/* Small pure and OS helpers shared by every layer. */
#ifndef AK_UTIL_H
#define AK_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Out of memory is the one failure the library does not report upwards. */
_Noreturn void ak_oom (void);
void *ak_xmalloc (size_t n);
void *ak_xcalloc (size_t n, size_t m);
void *ak_xrealloc (void *p, size_t n);
char *ak_xstrdup (const char *s);
char *ak_xstrndup (const char *s, size_t n);
char *ak_xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* NULL-terminated string vectors. */
size_t ak_strv_len (char *const *v);
void ak_strv_push (char ***v, const char *s);   /* copies s */
char **ak_strv_dup (char *const *v);
void ak_strv_free (char **v);

/* Write all of buf, retrying on EINTR and short writes. */
int ak_write_all (int fd, const void *buf, size_t len);
/* ak_write_all for a socket: send(MSG_NOSIGNAL), so a peer gone is -1
 * (EPIPE), never a SIGPIPE. */
int ak_send_all (int fd, const void *buf, size_t len);
/* Read until len bytes or EOF; returns bytes read or -1. */
ssize_t ak_read_all (int fd, void *buf, size_t len);
/* Write a whole file (O_CLOEXEC|O_TRUNC); returns -1 with *err set. */
int ak_write_file (const char *path, const char *data, size_t len, int mode, ak_error_t **err);
/* Write a short string to an existing file (sysfs/procfs style). */
int ak_write_string (const char *path, const char *s, ak_error_t **err);
/* Read a whole file into a NUL-terminated heap buffer. */
int ak_read_file (const char *path, char **out, size_t *len, ak_error_t **err);
/* The whole of a regular file or memfd already open on fd (read from offset
 * 0, whatever its position), NUL-terminated, of 1 to max bytes; NULL with
 * *err ("<what>: bad size", "<what>: read") otherwise. */
char *ak_read_fd (int fd, size_t max, size_t *len, const char *what, ak_error_t **err);
/* A memfd holding buf's len bytes, sealed against any change (a message
 * too large for a socket's, read by the other end with ak_read_fd). */
int ak_sealed_memfd (const char *name, const void *buf, size_t len, ak_error_t **err);
/* How many NUL-terminated entries buf[0..len) holds (a last one without
 * its NUL counted too): the size of an array that points at them. */
size_t ak_count_entries (const char *buf, size_t len);

/* Parse a decimal unsigned number in [min, max]; false on any junk. */
/* A duration: "45s", "30m", "1h30m", "2d" or a bare number of seconds, from
 * 1 s to 366 days.  Returns 0, or AK_DURATION_SYNTAX / AK_DURATION_LONG /
 * AK_DURATION_ZERO (each < 0) saying what is wrong with it. */
#define AK_DURATION_SYNTAX (-1)
#define AK_DURATION_LONG (-2)
#define AK_DURATION_ZERO (-3)
int ak_parse_duration (const char *s, long long *seconds);
bool ak_parse_u64 (const char *s, unsigned long long min, unsigned long long max,
                   unsigned long long *out);

/* Whether AK_TEST_DISABLE (a comma-separated list used by the test suite to
 * force fallback paths: landlock, cgroup, seccomp) names `feature`; always
 * false but in the test build (-DAK_TEST_BUILD).  Every use warns loudly: a
 * sandbox is never weakened silently. */
bool ak_test_disabled (const char *feature);
/* Whether path is a directory (followed) in this process's view. */
bool ak_dir_exists (const char *path);
/* The test build only: $AK_TEST_HOSTS, an absolute path to a hosts file
 * the egress policy resolves names with instead of the host's resolver
 * (so that tests never send a query off the machine); NULL otherwise. */
const char *ak_test_hosts_file (void);
/* The test build only: $AK_TEST_VMM, an absolute path to a program the
 * microVM backend runs instead of QEMU, under the same jail (a probe that
 * plays a compromised VMM); NULL otherwise. */
const char *ak_test_vmm (void);

/* Monotonic clock in nanoseconds. */
unsigned long long ak_now_ns (void);

/* The value of a hexadecimal digit, or -1. */
int ak_hex_value (int c);

/* Every signal to its default action and none blocked, as a new program
 * should start: also the C library's own real-time signals, which its
 * sigaction() will not touch but a parent may have left ignored. */
void ak_signals_default (void);

/* For a process that owns others and reads its signals from a signalfd
 * of *mask: SIGCHLD and the requests to stop (SIGTERM, SIGINT, SIGHUP),
 * set in *mask and blocked. */
void ak_block_owner_signals (sigset_t *mask);

/* The signals this process ignores (bit n-1: signal n), as the kernel
 * has them (the C library's own 32 and 33 included), and the same set
 * ignored (SIGKILL and SIGSTOP never). */
uint64_t ak_signals_ignored (void);
void ak_signals_ignore (uint64_t set);
/* This process ignores exactly set from now on (it took it whole from its
 * caller, a pool front its launcher's, and changes it no more):
 * ak_signals_ignored answers it without asking the kernel. */
void ak_signals_ignored_are (uint64_t set);

/* For a process that waits for work to do at once (a pool front): the
 * page faults that work would take, taken now.
 * Every private writable page it has is written (a child's copy-on-write
 * pages become its own), the code of its program and libraries is read in,
 * heap_bytes more heap are grown and kept for the allocator, and
 * stack_bytes of stack below this frame are touched.
 * Costs memory (its pages are its own), never correctness.  Single-threaded
 * processes only (a page is read and written back). */
void ak_prefault (size_t heap_bytes, size_t stack_bytes);

#endif

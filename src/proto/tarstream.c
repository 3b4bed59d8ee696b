/* Tar streams over the protocol (see tarstream.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "proto/archive_dl.h"
#include "proto/tar_extract.h"
#include "proto/tarstream.h"


/* Where the sender's archive goes: FILE_DATA frames on conn.  Once the
 * stream is aborted nothing more is sent (libarchive would otherwise pad the
 * open entry with zeros and close the archive when it is freed, and the
 * receiver would take that for a complete copy). */
typedef struct push {
  int conn;
  bool aborted;
  bool conn_failed;
} push_t;

static la_ssize_t
send_block (struct archive *a, void *data, const void *buf, size_t len)
{
  push_t *p = data;
  size_t off = 0;
  (void) a;
  if (p->aborted)
    return -1;
  while (off < len)
    {
      size_t n = len - off > 65536 ? 65536 : len - off;
      if (ak_proto_write (p->conn, AK_F_FILE_DATA, 0, (const char *) buf + off, n, NULL) < 0)
        {
          p->conn_failed = true;
          return -1;
        }
      off += n;
    }
  return (la_ssize_t) len;
}

/* Ends a stream that cannot be completed: the receiver gets an ERROR frame
 * in place of the rest (never a short or padded file, never a wait for
 * frames that will not come). */
static void
send_abort (push_t *p, const ak_error_t *why)
{
  json_t *j;
  if (p->aborted)
    return;
  p->aborted = true;
  if (p->conn_failed)
    return;
  j = json_pack ("{s:s, s:i}", "message", why ? why->msg : "the sender stopped", "code", why ? why->code : 0);
  ak_proto_write_json (p->conn, AK_F_ERROR, 0, j, NULL);
  json_decref (j);
}

/* The data of a regular file entry: exactly its declared size, or an error.
 * The file is opened again without following a link and without blocking
 * (whatever now stands at the name may be a FIFO), and must be the file
 * whose header went out. */
static int
send_file_data (struct archive *out, struct archive_entry *e, const char *rel, ak_error_t **err)
{
  const char *src = ak_la.archive_entry_sourcepath (e);
  la_int64_t left = ak_la.archive_entry_size (e), total = left;
  _cleanup_close_ int fd = -1;
  struct stat st;
  char buf[65536];

  if (src == NULL)
    return ak_error_set (err, EINVAL, "%s: no source path", rel);
  fd = open (src, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return ak_error_set (err, errno, "read %s: %s", rel, strerror (errno));
  if (fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "read %s: %s", rel, strerror (errno));
  if (!S_ISREG (st.st_mode) || (dev_t) ak_la.archive_entry_dev (e) != st.st_dev
      || (ino_t) ak_la.archive_entry_ino64 (e) != st.st_ino)
    return ak_error_set (err, EAGAIN, "%s was replaced while being copied", rel);
  while (left > 0)
    {
      ssize_t n = read (fd, buf, left < (la_int64_t) sizeof buf ? (size_t) left : sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return ak_error_set (err, errno, "read %s: %s", rel, strerror (errno));
      if (n == 0)
        return ak_error_set (err, 0,
                             "%s changed while being copied: it ended after %lld of its %lld bytes; "
                             "not copied",
                             rel, (long long) (total - left), (long long) total);
      if (ak_la.archive_write_data (out, buf, (size_t) n) != n)
        return ak_error_set (err, EPIPE, "send %s: %s", rel, ak_la.archive_error_string (out));
      left -= n;
    }
  return 0;
}

static int
ak_tar_send_loaded (int conn, const char *path, ak_error_t **err)
{
  struct archive *disk = ak_la.archive_read_disk_new ();
  struct archive *out = ak_la.archive_write_new ();
  struct archive_entry *e;
  _cleanup_free_ char *copy = ak_xstrdup (path);
  const char *base = basename (copy);
  size_t plen = strlen (path);
  push_t push = { .conn = conn };
  struct stat st;
  int r, ret = 0;

  if (lstat (path, &st) < 0)
    {
      ret = ak_error_set (err, errno, "%s", path);
      goto out;
    }
  ak_la.archive_read_disk_set_symlink_physical (disk);
  ak_la.archive_read_disk_set_standard_lookup (disk);
  ak_la.archive_write_set_format_pax_restricted (out);
  ak_la.archive_write_set_bytes_per_block (out, 0);
  if (ak_la.archive_write_open (out, &push, NULL, send_block, NULL) != ARCHIVE_OK
      || ak_la.archive_read_disk_open (disk, path) != ARCHIVE_OK)
    {
      ret = ak_error_set (err, 0, "%s: %s", path, ak_la.archive_error_string (disk));
      goto out;
    }
  for (;;)
    {
      const char *name;
      _cleanup_free_ char *rel = NULL;
      e = ak_la.archive_entry_new ();
      r = ak_la.archive_read_next_header2 (disk, e);
      if (r == ARCHIVE_EOF)
        {
          ak_la.archive_entry_free (e);
          break;
        }
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        {
          ak_la.archive_entry_free (e);
          ret = ak_error_set (err, 0, "%s: %s", path, ak_la.archive_error_string (disk));
          goto out;
        }
      ak_la.archive_read_disk_descend (disk);
      /* Names relative to the parent of path: "base/..." */
      name = ak_la.archive_entry_pathname (e);
      rel = ak_xasprintf ("%s%s", base, strncmp (name, path, plen) == 0 ? name + plen : "");
      ak_la.archive_entry_set_pathname (e, rel);
      if (ak_la.archive_write_header (out, e) != ARCHIVE_OK)
        ret = ak_error_set (err, push.conn_failed ? EPIPE : 0, "%s: %s", rel, ak_la.archive_error_string (out));
      else if (ak_la.archive_entry_size (e) > 0 && ak_la.archive_entry_filetype (e) == AE_IFREG)
        /* A file that cannot be read, or stops being what it was, is an
         * error, never a copy silently cut short or padded with zeros. */
        ret = send_file_data (out, e, rel, err);
      ak_la.archive_entry_free (e);
      if (ret < 0)
        goto out;
    }
  if (ak_la.archive_write_close (out) != ARCHIVE_OK)
    ret = ak_error_set (err, 0, "%s: %s", path, ak_la.archive_error_string (out));
  else if (ak_proto_write (conn, AK_F_FILE_DATA, 0, NULL, 0, err) < 0)
    ret = -1;
out:
  if (ret < 0)
    send_abort (&push, err ? *err : NULL);
  ak_la.archive_read_free (disk);
  ak_la.archive_write_free (out);
  return ret;
}

typedef struct pull {
  ak_proto_reader_t *rd;
  bool done;
  bool failed;
  char why[512]; /* the peer's ERROR message, when it sent one */
  int why_code;  /* and its code */
} pull_t;

static la_ssize_t
pull_block (struct archive *a, void *data, const void **buf)
{
  pull_t *p = data;
  ak_frame_t f;
  (void) a;
  if (p->done)
    return 0;
  for (;;)
    {
      int rc = ak_proto_read (p->rd, &f, NULL);
      if (rc == AK_PROTO_AGAIN)
        continue;
      if (rc != 1 || f.type != AK_F_FILE_DATA)
        {
          json_t *j = NULL;
          if (rc == 1 && f.type == AK_F_ERROR && ak_proto_parse_json (&f, &j, NULL) == 0)
            {
              const char *m = json_string_value (json_object_get (j, "message"));
              snprintf (p->why, sizeof p->why, "%s", m ? m : "error");
              p->why_code = (int) json_integer_value (json_object_get (j, "code"));
              json_decref (j);
            }
          p->failed = true;
          return -1;
        }
      if (f.len == 0)
        {
          p->done = true;
          return 0;
        }
      *buf = f.payload;
      return (la_ssize_t) f.len;
    }
}

static int
ak_tar_receive_loaded (ak_proto_reader_t *reader, const char *path, bool from_sandbox, long long *bytes,
                ak_error_t **err)
{
  pull_t p = { .rd = reader };
  struct archive *in = ak_la.archive_read_new ();
  struct archive *disk = ak_la.archive_write_disk_new ();
  struct archive_entry *e;
  _cleanup_free_ char *c1 = ak_xstrdup (path), *c2 = ak_xstrdup (path);
  const char *dir, *newtop = NULL;
  struct stat st;
  int ret = 0;
  long long written = 0;
  int cwd = open (".", O_PATH | O_CLOEXEC);
  _cleanup_free_ char *partial = NULL;

  /* Into an existing directory, or as the path itself. */
  if (stat (path, &st) == 0 && S_ISDIR (st.st_mode))
    dir = path;
  else
    {
      dir = dirname (c1);
      newtop = basename (c2);
    }
  if (from_sandbox)
    {
      /* The sandbox's stream lands on the host: through a descriptor on the
       * destination only (tar_extract.c). */
      _cleanup_close_ int destfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (destfd < 0)
        {
          ret = ak_error_set (err, errno, "%s", dir);
          goto out;
        }
      ak_la.archive_read_support_format_tar (in);
      if (ak_la.archive_read_open (in, &p, NULL, pull_block, NULL) != ARCHIVE_OK)
        ret = -1;
      else
        ret = ak_tar_extract_untrusted (in, destfd, newtop, &written, err);
      if (ret < 0 && p.why[0])
        {
          ak_error_clear (err);
          ret = ak_error_set (err, 0, "%s", p.why);
        }
      else if (ret < 0 && (err == NULL || *err == NULL))
        ret = ak_error_set (err, 0, "archive: %s", ak_la.archive_error_string (in));
      if (ret < 0)
        goto out;
      goto drain;
    }
  if (chdir (dir) < 0)
    {
      ret = ak_error_set (err, errno, "%s", dir);
      goto out;
    }
  ak_la.archive_read_support_format_tar (in);
  /* A stream from the host, extracted inside a sandbox: modes kept. */
  ak_la.archive_write_disk_set_options (disk, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME
                                            | ARCHIVE_EXTRACT_SECURE_NODOTDOT
                                            | ARCHIVE_EXTRACT_SECURE_SYMLINKS
                                            | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS
                                            | ARCHIVE_EXTRACT_UNLINK);
  if (ak_la.archive_read_open (in, &p, NULL, pull_block, NULL) != ARCHIVE_OK)
    {
      ret = p.why[0] ? ak_error_set (err, 0, "%s", p.why)
                     : ak_error_set (err, 0, "archive: %s", ak_la.archive_error_string (in));
      goto out;
    }
  for (;;)
    {
      int r = ak_la.archive_read_next_header (in, &e);
      if (r == ARCHIVE_EOF)
        break;
      if (r != ARCHIVE_OK)
        {
          ret = p.why[0] ? ak_error_set (err, 0, "%s", p.why)
                         : ak_error_set (err, 0, "archive: %s", ak_la.archive_error_string (in));
          goto out;
        }
      if (newtop != NULL)
        {
          /* Rename the archive's top component to the target's name. */
          const char *name = ak_la.archive_entry_pathname (e);
          const char *rest = strchr (name, '/');
          _cleanup_free_ char *renamed = ak_xasprintf ("%s%s", newtop, rest ? rest : "");
          ak_la.archive_entry_set_pathname (e, renamed);
        }
      if (ak_la.archive_write_header (disk, e) != ARCHIVE_OK)
        {
          ret = ak_error_set (err, 0, "%s: %s", ak_la.archive_entry_pathname (e), ak_la.archive_error_string (disk));
          goto out;
        }
      for (;;)
        {
          const void *buf;
          size_t len;
          la_int64_t off;
          r = ak_la.archive_read_data_block (in, &buf, &len, &off);
          if (r == ARCHIVE_EOF)
            break;
          if (r != ARCHIVE_OK || ak_la.archive_write_data_block (disk, buf, len, off) != ARCHIVE_OK)
            {
              ret = p.why[0] ? ak_error_set (err, 0, "%s", p.why)
                             : ak_error_set (err, 0, "%s: %s", ak_la.archive_entry_pathname (e),
                                             ak_la.archive_error_string (r != ARCHIVE_OK ? in : disk));
              /* Stopped inside this file: none of it is kept (libarchive
               * would leave it cut short, or padded to its size). */
              partial = ak_xstrdup (ak_la.archive_entry_pathname (e));
              goto out;
            }
          written += (long long) len;
        }
      ak_la.archive_write_finish_entry (disk);
    }
drain:
  /* Drain to the end marker if the archive ended early. */
  while (!p.done && !p.failed)
    {
      const void *b;
      if (pull_block (in, &p, &b) <= 0)
        break;
    }
  if (p.failed && ret == 0)
    ret = ak_error_set (err, 0, "archive stream ended early");
  if (bytes != NULL)
    *bytes = written;
out:
  ak_la.archive_read_free (in);
  ak_la.archive_write_free (disk);
  if (partial != NULL)
    (void) unlink (partial); /* relative to dir, the current directory here */
  if (cwd >= 0)
    {
      (void) !fchdir (cwd);
      close (cwd);
    }
  return ret;
}

static int
ak_tar_send_mem_loaded (int conn, const char *name, const void *data, size_t len, ak_error_t **err)
{
  struct archive *out = ak_la.archive_write_new ();
  struct archive_entry *e = ak_la.archive_entry_new ();
  push_t push = { .conn = conn };
  int ret = 0;

  ak_la.archive_write_set_format_pax_restricted (out);
  ak_la.archive_write_set_bytes_per_block (out, 0);
  ak_la.archive_entry_set_pathname (e, name);
  ak_la.archive_entry_set_filetype (e, AE_IFREG);
  ak_la.archive_entry_set_perm (e, 0644);
  ak_la.archive_entry_set_size (e, (la_int64_t) len);
  ak_la.archive_entry_set_mtime (e, time (NULL), 0);
  if (ak_la.archive_write_open (out, &push, NULL, send_block, NULL) != ARCHIVE_OK
      || ak_la.archive_write_header (out, e) != ARCHIVE_OK
      || (len > 0 && ak_la.archive_write_data (out, data, len) != (la_ssize_t) len)
      || ak_la.archive_write_close (out) != ARCHIVE_OK)
    ret = ak_error_set (err, push.conn_failed ? EPIPE : 0, "send %s: %s", name, ak_la.archive_error_string (out));
  else if (ak_proto_write (conn, AK_F_FILE_DATA, 0, NULL, 0, err) < 0)
    ret = -1;
  if (ret < 0)
    send_abort (&push, err ? *err : NULL);
  ak_la.archive_entry_free (e);
  ak_la.archive_write_free (out);
  return ret;
}

static int
ak_tar_receive_mem_loaded (ak_proto_reader_t *reader, size_t max, char **data, size_t *len, ak_error_t **err)
{
  pull_t p = { .rd = reader };
  struct archive *in = ak_la.archive_read_new ();
  struct archive_entry *e;
  char *buf = NULL;
  size_t used = 0;
  int ret = -1, r;

  ak_la.archive_read_support_format_tar (in);
  if (ak_la.archive_read_open (in, &p, NULL, pull_block, NULL) != ARCHIVE_OK
      || (r = ak_la.archive_read_next_header (in, &e)) != ARCHIVE_OK)
    {
      if (p.why[0])
        ak_error_coded (err, p.why_code, "%s", p.why);
      else
        ak_error_set (err, 0, "archive: %s", ak_la.archive_error_string (in));
      goto out;
    }
  if (ak_la.archive_entry_filetype (e) != AE_IFREG || ak_la.archive_entry_hardlink (e) != NULL)
    {
      ak_error_coded (err, EINVAL, "%s: is not a regular file", ak_la.archive_entry_pathname (e));
      goto out;
    }
  if (ak_la.archive_entry_size (e) < 0 || (size_t) ak_la.archive_entry_size (e) > max)
    {
      ak_error_coded (err, EFBIG, "file is larger than %zu bytes", max);
      goto out;
    }
  buf = ak_xmalloc ((size_t) ak_la.archive_entry_size (e) + 1);
  for (;;)
    {
      la_ssize_t n = ak_la.archive_read_data (in, buf + used, (size_t) ak_la.archive_entry_size (e) - used);
      if (n == 0)
        break;
      if (n < 0)
        {
          ak_error_set (err, 0, "archive: %s", ak_la.archive_error_string (in));
          goto out;
        }
      used += (size_t) n;
    }
  buf[used] = '\0';
  ret = 0;
  /* Drain to the end marker so the final reply can be read.  Not after a
   * refusal: the caller drops the connection instead of reading what may be
   * a huge file to its end. */
  while (!p.done && !p.failed)
    {
      const void *b;
      if (pull_block (in, &p, &b) <= 0)
        break;
    }
out:
  ak_la.archive_read_free (in);
  if (ret == 0)
    {
      *data = buf;
      *len = used;
    }
  else
    free (buf);
  return ret;
}

int
ak_tar_send (int conn, const char *path, ak_error_t **err)
{
  if (ak_archive_load (err) < 0)
    return -1;
  return ak_tar_send_loaded (conn, path, err);
}

int
ak_tar_receive (ak_proto_reader_t *reader, const char *path, bool from_sandbox, long long *bytes,
                ak_error_t **err)
{
  if (ak_archive_load (err) < 0)
    return -1;
  return ak_tar_receive_loaded (reader, path, from_sandbox, bytes, err);
}

int
ak_tar_send_mem (int conn, const char *name, const void *data, size_t len, ak_error_t **err)
{
  if (ak_archive_load (err) < 0)
    return -1;
  return ak_tar_send_mem_loaded (conn, name, data, len, err);
}

int
ak_tar_receive_mem (ak_proto_reader_t *reader, size_t max, char **data, size_t *len, ak_error_t **err)
{
  if (ak_archive_load (err) < 0)
    return -1;
  return ak_tar_receive_mem_loaded (reader, max, data, len, err);
}

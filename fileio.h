// SPDX-License-Identifier: MIT
// fileio.h - the two rules for reading files and the one rule for writing them (util.c):
//   read_file   files found inside a folder (model files, shards, frames, templates): regular files only, checked
//               without blocking (a FIFO or device in a model folder is refused with one line, never opened blocking)
//   read_input  inputs the user names on the command line (-i, -f, --video, --messages): a regular file, or a pipe /
//               FIFO / character device read to its end ('-' = stdin), with the same size limit
//   output_*    outputs (--dump, --draw-boxes, ...): a regular file or new path is replaced atomically (temporary
//               file + rename; through a symlink the target file is replaced, not the link); a character device,
//               FIFO or one of the program's own stdout/stderr is written in place; a folder, block device, socket,
//               dangling link, or a file / device the user may not write is refused
#ifndef GLM4V_FILEIO_H
#define GLM4V_FILEIO_H

#include <stddef.h>
#include <stdio.h>

// what a path names, without opening it (stat follows links): FT_* below; -1 + glm_errmsg when it cannot be stat'ed
enum { FT_REGULAR = 1, FT_STREAM = 2 /* FIFO or character device */, FT_OTHER = 3 };
int path_kind(const char *path);
// 1 when something (even a dangling symlink) is at path, else 0
int path_present(const char *path);

// an inside-a-folder file: regular only, never blocks; NUL-terminated (len excludes the NUL); NULL + glm_errmsg
char *read_file(const char *path, size_t *len, size_t max_bytes);
// a command-line input: regular file, FIFO / pipe / character device ('-' = stdin) read to its end; NUL-terminated;
// NULL + glm_errmsg (a stream longer than max_bytes is refused once max_bytes + 1 bytes have been read)
char *read_input(const char *path, size_t *len, size_t max_bytes);
// read an open descriptor to its end (at most max_bytes, else an error naming `name`); NUL-terminated
char *read_fd_all(int fd, const char *name, size_t *len, size_t max_bytes);

// an output being written: output_open, write to f, then output_commit (or output_abort)
typedef struct {
    FILE *f;      // the stream to write
    char *path;   // the path the user gave (messages)
    char *target; // regular-file destination of the rename (the symlink's target for a link); NULL when direct
    char *tmp;    // temporary file next to target (NULL when direct)
    int direct;   // 1: written in place (character device, FIFO, the program's stdout/stderr): no rename, no fsync
} OutFile;
// check, without opening or creating anything, that path is a writable destination under the rule above (flag names
// the option in the message, e.g. "--dump"); 0 or -1 + glm_errmsg
int output_check(const char *path, const char *flag);
// open path for writing under the rule above; 0 or -1 + glm_errmsg
int output_open(OutFile *o, const char *path);
// flush, fsync and rename into place (atomic outputs) or flush (direct ones); closes; 0 or -1 + glm_errmsg (the
// temporary file is removed on failure)
int output_commit(OutFile *o);
// close and remove the temporary file (nothing written reaches the destination for atomic outputs)
void output_abort(OutFile *o);

#endif

/* File-system helpers shared by the services. */
#ifndef FRESCO_PATH_H
#define FRESCO_PATH_H

/* mkdir -p with mode 0700 for what it creates: 0 when path is a directory
 * afterwards, else -1 with errno set (ENOTDIR when something else is in
 * the way, ENAMETOOLONG past PATH_MAX). */
int fr_mkdirs(const char *path);

#endif

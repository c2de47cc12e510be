#!/usr/bin/env bash
# The floor under `bbt`'s model load on this machine: how fast plain C moves the bytes of a
# checkpoint the way the loader does (fresh memory written once, a page-cache file copied out of a
# mapping or by pread, a second pass over memory just written). On a virtual machine whose memory is
# backed lazily, the first write of fresh pages can cost far more than the copy itself; compare
# these seconds with the "loaded in" figure before reading the load time as the loader's own.
# usage: bench/first_touch.sh FILE   (e.g. a model.safetensors; its page cache warmed first)
set -euo pipefail
file=${1:?usage: bench/first_touch.sh FILE}
work=$(mktemp -d "${TMPDIR:-/tmp}/bbt-first-touch.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/t.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char** argv) {
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) { perror(argv[1]); return 1; }
  size_t n = (size_t)st.st_size / 64 * 64;
  char* m = mmap(0, n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  volatile unsigned sink = 0;
  for (size_t i = 0; i < n; i += 4096) sink += (unsigned char)m[i];  /* page cache warm */
  char *a = aligned_alloc(4096, n), *b = aligned_alloc(4096, n);
  double t = now(); memset(a, 1, n); double fresh = now() - t;
  t = now(); memcpy(a, m, n); double from_map = now() - t;
  t = now(); memcpy(a, m, n); double again = now() - t;
  t = now(); for (size_t off = 0; off < n;) { ssize_t g = pread(fd, b + off, n - off > (1u << 30) ? (1u << 30) : n - off, off); if (g <= 0) return 1; off += g; }
  double pread_fresh = now() - t;
  unsigned s = 0; t = now(); for (size_t i = 0; i < n / 4; ++i) s |= ((unsigned*)b)[i]; double scan = now() - t;
  printf("{\"bytes\": %zu, \"memset_fresh_s\": %.3f, \"memcpy_from_mapping_s\": %.3f, \"memcpy_again_s\": %.3f, "
         "\"pread_into_fresh_s\": %.3f, \"scan_s\": %.3f, \"sink\": %u}\n", n, fresh, from_map, again, pread_fresh, scan, s + sink);
  return 0;
}
C
cc -O2 -o "$work/t" "$work/t.c"
"$work/t" "$file"

#!/usr/bin/env bash
# Fetches (here, with apt-get download) the Debian packages bench/gpu.sh unpacks on the GPU machine,
# into build-debs/ (ignored by git; carry it).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$here/build-debs" && cd "$here/build-debs"
for p in libeigen3-dev libboost1.74-dev libboost-program-options1.74-dev libboost-program-options1.74.0 \
  libboost-program-options-dev libhdf5-dev libhdf5-103-1 libhdf5-hl-100 libsz2 libaec0 libaec-dev \
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common libhwloc15 libevent-core-2.1-7 \
  libevent-pthreads-2.1-7 libevent-2.1-7 libpmix2 libfabric1 libucx0 libibverbs1 librdmacm1 libpsm2-2 \
  libpsm-infinipath1 libnl-3-200 libnl-route-3-200 libmunge2 nlohmann-json3-dev libpcre2-dev libpcre2-8-0 \
  libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libcurl3-gnutls zlib1g-dev; do
  ls "$p"_*.deb >/dev/null 2>&1 || apt-get download "$p"
done
du -sh .

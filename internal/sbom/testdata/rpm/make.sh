#!/usr/bin/env bash
# Makes the rpm databases of the RPM cataloger's tests with the real rpm
# (Debian 12's rpm 4.18: apt-get install rpm), so they are what rpm writes:
#
#   rpmdb.sqlite  sqlite backend (the default of rpm >= 4.16: CentOS
#                 Stream 9, RHEL 9, Fedora), holding cccp-hello (epoch 2,
#                 noarch), cccp-world (x86_64) and 60 cccp-sub-N packages
#                 built from one spec; cccp-sub-7 has a description of
#                 about 12 KB, so its header spills to overflow pages, and
#                 62 headers fill more than one leaf page.
#
# Debian's rpm has no ndb backend: the ndb test writes an ndb file around
# the headers it reads from rpmdb.sqlite (rpm_test.go).
#
# Run from this folder: bash make.sh (about 30 s). The result is committed;
# tests never run rpm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/hello.spec" <<'SPEC'
Name:           cccp-hello
Version:        1.2.3
Release:        4.el9
Epoch:          2
Summary:        A tiny package for cccp's SBOM tests
License:        MIT
Vendor:         cccp test
BuildArch:      noarch

%description
A tiny package for cccp's SBOM tests.

%install
mkdir -p %{buildroot}/usr/share/cccp-hello
echo hello > %{buildroot}/usr/share/cccp-hello/hello.txt

%files
/usr/share/cccp-hello/hello.txt
SPEC

cat >"$work/world.spec" <<'SPEC'
Name:           cccp-world
Version:        0.9
Release:        1
Summary:        A second tiny package for cccp's SBOM tests
License:        GPL-2.0-or-later
BuildArch:      x86_64

%description
A second tiny package.

%install
mkdir -p %{buildroot}/usr/share/cccp-world
echo world > %{buildroot}/usr/share/cccp-world/world.txt

%files
/usr/share/cccp-world/world.txt
SPEC

{
  cat <<'SPEC'
Name:           cccp-subs
Version:        1.0
Release:        1
Summary:        Many packages from one spec
License:        MIT
BuildArch:      noarch

%description
Many packages from one spec.

%install
mkdir -p %{buildroot}/usr/share/cccp-subs
SPEC
  for i in $(seq 1 60); do
    echo "echo $i > %{buildroot}/usr/share/cccp-subs/$i.txt"
  done
  for i in $(seq 1 60); do
    printf '\n%%package -n cccp-sub-%d\nSummary: sub package %d\nVersion: %d.0\n\n%%description -n cccp-sub-%d\n' "$i" "$i" "$i" "$i"
    if [ "$i" = 7 ]; then
      for _ in $(seq 1 200); do echo "A long description line that makes this header spill to overflow pages."; done
    else
      echo "Sub package $i."
    fi
    printf '\n%%files -n cccp-sub-%d\n/usr/share/cccp-subs/%d.txt\n' "$i" "$i"
  done
} >"$work/subs.spec"

for s in hello world subs; do
  rpmbuild --quiet --define "_topdir $work/top" -bb "$work/$s.spec"
done
db="$work/db"
mkdir -p "$db"
rpm --define "_db_backend sqlite" --dbpath "$db" --initdb
rpm --define "_db_backend sqlite" --dbpath "$db" -i --justdb --nodeps --ignorearch --ignoreos --noscripts \
  $(find "$work/top/RPMS" -name '*.rpm' ! -name 'cccp-subs-*')
rpm --define "_db_backend sqlite" --dbpath "$db" -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}\n' | sort >"$here/rpmdb.sqlite.qa"
cp "$db/rpmdb.sqlite" "$here/rpmdb.sqlite"

# Packages: the same headers in a Berkeley DB hash database, as rpm < 4.16
# kept them (CentOS 7 and 8): key the package number (uint32, little-endian
# as on x86), value the header. Debian's rpm cannot write Berkeley DB, so
# db_load of the Berkeley DB library itself (apt-get install db5.3-util)
# writes it, from a dump python3 makes of rpmdb.sqlite.
python3 - "$here/rpmdb.sqlite" >"$work/Packages.dump" <<'PY'
import sqlite3, struct, sys
con = sqlite3.connect("file:" + sys.argv[1] + "?immutable=1", uri=True)
print("VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize=4096\nHEADER=END")
for hnum, blob in con.execute("SELECT hnum, blob FROM Packages ORDER BY hnum"):
    print(" " + struct.pack("<I", hnum).hex())
    print(" " + blob.hex())
print("DATA=END")
PY
rm -f "$here/Packages"
db5.3_load -f "$work/Packages.dump" "$here/Packages"

#!/usr/bin/env bash
# Package the Linux onedir build as dist/tailnet-agent-<version>-linux-<arch>.tar.gz
#
#   installer/linux/build_tarball.sh [DIST_DIR] [OUT_DIR]
#
#   DIST_DIR  the folder `pyinstaller build.spec` made, holding tailnet-agent and
#             tailnet-agent-cli (default: dist/tailnet-agent)
#   OUT_DIR   where the .tar.gz goes (default: dist)
#
# Environment (optional):
#   VERSION            the version in the name (default: __version__ in agent/__init__.py)
#   ARCH               the architecture in the name (default: `uname -m`: x86_64, aarch64)
#   SOURCE_DATE_EPOCH  the files' time stamp in the archive (default: the last commit's, else
#                      now), for an archive that is the same byte for byte from the same input
#
# The archive holds one folder, tailnet-agent-<version>-linux-<arch>/, with the onedir build in
# tailnet-agent/, install.sh, INSTALL.txt, the menu entry tailnet-agent.desktop and icons/.
# Prints the archive's path.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/installer/linux"
APP="tailnet-agent"

DIST=${1:-"$ROOT/dist/$APP"}
OUT_DIR=${2:-"$ROOT/dist"}

die() { echo "build_tarball.sh: $*" >&2; exit 1; }

for exe in "$APP" "$APP-cli"; do
  [ -f "$DIST/$exe" ] || die "$DIST/$exe is missing (run: pyinstaller build.spec --noconfirm --clean)"
done

if [ -z "${VERSION:-}" ]; then
  VERSION=$(sed -n 's/^__version__ = "\([^"]*\)"$/\1/p' "$ROOT/agent/__init__.py")
fi
[ -n "$VERSION" ] || die "no version: set VERSION or fix agent/__init__.py"
ARCH=${ARCH:-$(uname -m)}
case "$ARCH" in
  *[!A-Za-z0-9_]* | "") die "ARCH must be a plain name such as x86_64, not '$ARCH'" ;;
esac
case "$VERSION" in
  *[!A-Za-z0-9._+-]*) die "VERSION must be a plain version such as 1.2.3, not '$VERSION'" ;;
esac
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
fi

NAME="$APP-$VERSION-linux-$ARCH"
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
TARBALL="$OUT_DIR/$NAME.tar.gz"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

STAGE="$WORK/$NAME"
mkdir -p "$STAGE/icons"
cp -a "$DIST" "$STAGE/$APP"
chmod 0755 "$STAGE/$APP/$APP" "$STAGE/$APP/$APP-cli"
install -m 0755 "$HERE/install.sh" "$STAGE/install.sh"
install -m 0644 "$HERE/INSTALL.txt" "$HERE/$APP.desktop" "$STAGE/"
install -m 0644 "$ROOT/icons/$APP.png" "$STAGE/icons/$APP.png"
if [ -d "$ROOT/icons/png" ]; then
  mkdir -p "$STAGE/icons/png"
  find "$ROOT/icons/png" -maxdepth 1 -name "$APP-*.png" -exec install -m 0644 {} "$STAGE/icons/png/" \;
fi
# Nobody but the owner may change what runs (a build under umask 002 leaves g+w behind).
chmod -R go-w "$STAGE"

tar -C "$WORK" --sort=name --owner=0 --group=0 --numeric-owner \
  --mtime="@$SOURCE_DATE_EPOCH" --format=gnu -cf - "$NAME" | gzip -n -9 >"$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"
echo "$TARBALL"

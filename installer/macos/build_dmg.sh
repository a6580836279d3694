#!/usr/bin/env bash
# Package the macOS app as a disk image: dist/tailnet-agent-<version>-macos-<arch>.dmg
#
#   installer/macos/build_dmg.sh [APP] [OUT_DIR]
#
#   APP      the app bundle made by `pyinstaller build.spec` (default: dist/tailnet-agent.app)
#   OUT_DIR  where the .dmg goes (default: dist)
#
# Environment (all optional):
#   VERSION               the version in the file name (default: __version__ in agent/__init__.py)
#   ARCH                  arm64 or x86_64 (default: `uname -m`, the build machine's; PyInstaller
#                         builds for it)
#   DMG_BUILDER           dmgbuild or hdiutil (default: dmgbuild when installed, else hdiutil)
#   MACOS_SIGN_IDENTITY   a "Developer ID Application: NAME (TEAMID)" identity (or its SHA-1)
#                         from the keychain. Set: every Mach-O file in the app is re-signed
#                         inside-out with the hardened runtime and a secure timestamp, the two
#                         executables with installer/macos/entitlements.plist, then the .dmg is
#                         signed too. Unset: the app keeps PyInstaller's ad-hoc signature (it is
#                         re-signed ad-hoc inside-out only if that signature does not verify).
#   MACOS_KEYCHAIN        the keychain holding that identity (codesign --keychain)
#   Notarisation (only with MACOS_SIGN_IDENTITY; either one of):
#   MACOS_NOTARY_PROFILE  a notarytool keychain profile (`xcrun notarytool store-credentials`)
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD
#                         an Apple ID, its team and an app-specific password
#   With credentials the app is notarised and stapled, then the .dmg is built, notarised and
#   stapled (`xcrun notarytool submit --wait`, `xcrun stapler staple`), so Gatekeeper accepts
#   both offline. docs/release.md explains what users see without this.
#
# Needs macOS (codesign, hdiutil, ditto; xcrun for notarisation); dmgbuild comes from
# `pip install '.[desktop,build]'`. Written for bash 3.2 too (macOS's /bin/bash): no empty "${a[@]}".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/installer/macos"
APP_NAME="tailnet-agent"
BUNDLE_ID="io.github.tailnet-agent"           # agent.edges.paths.APP_ID
GUI_EXE="tailnet-agent"                       # agent.edges.paths.GUI_EXECUTABLE
CLI_EXE="tailnet-agent-cli"                   # agent.edges.paths.CLI_EXECUTABLE
ENTITLEMENTS="$HERE/entitlements.plist"
VOLUME_ICON="$ROOT/icons/tailnet-agent.icns"

APP=${1:-"$ROOT/dist/$APP_NAME.app"}
OUT_DIR=${2:-"$ROOT/dist"}

die() { echo "build_dmg.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

[ "$(uname -s)" = "Darwin" ] || die "needs macOS (codesign, hdiutil)"
[ -d "$APP/Contents/MacOS" ] || die "no app bundle at $APP (run: pyinstaller build.spec --noconfirm --clean)"
for exe in "$GUI_EXE" "$CLI_EXE"; do
  [ -x "$APP/Contents/MacOS/$exe" ] || die "$APP/Contents/MacOS/$exe is missing"
done

# The bundle's identity, as agent/edges/paths.py and the signing and notifications expect it. With two
# EXEs in one BUNDLE, PyInstaller takes console= from the last one: a console CLI listed last
# makes it write LSBackgroundOnly=true, a background-only app (PyInstaller/building/osx.py).
plist_value() {
  plutil -extract "$1" raw -o - "$APP/Contents/Info.plist" 2>/dev/null || true
}
[ "$(plist_value CFBundleIdentifier)" = "$BUNDLE_ID" ] || die "CFBundleIdentifier is not $BUNDLE_ID"
[ "$(plist_value CFBundleExecutable)" = "$GUI_EXE" ] || die "CFBundleExecutable is not $GUI_EXE"
[ "$(plist_value LSUIElement)" = "true" ] || die "LSUIElement is not true (the tray would get a Dock icon)"
if [ "$(plist_value LSBackgroundOnly)" = "true" ]; then
  die "LSBackgroundOnly is true: build.spec must pass info_plist={'LSBackgroundOnly': False, ...}" \
    "or give BUNDLE the windowed EXE last"
fi

if [ -z "${VERSION:-}" ]; then
  VERSION=$(sed -n 's/^__version__ = "\([^"]*\)"$/\1/p' "$ROOT/agent/__init__.py")
fi
[ -n "$VERSION" ] || die "no version: set VERSION or fix agent/__init__.py"
ARCH=${ARCH:-$(uname -m)}
case "$ARCH" in
  arm64 | x86_64) ;;
  *) die "ARCH must be arm64 or x86_64, not $ARCH" ;;
esac

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
DMG="$OUT_DIR/$APP_NAME-$VERSION-macos-$ARCH.dmg"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

IDENTITY=${MACOS_SIGN_IDENTITY:-}
NOTARY_ARGS=()
if [ -n "${MACOS_NOTARY_PROFILE:-}" ]; then
  NOTARY_ARGS=(--keychain-profile "$MACOS_NOTARY_PROFILE")
elif [ -n "${APPLE_ID:-}" ] && [ -n "${APPLE_TEAM_ID:-}" ] && [ -n "${APPLE_APP_PASSWORD:-}" ]; then
  NOTARY_ARGS=(--apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" --password "$APPLE_APP_PASSWORD")
fi
if [ ${#NOTARY_ARGS[@]} -gt 0 ] && [ -z "$IDENTITY" ]; then
  die "notarisation needs a Developer ID signature: set MACOS_SIGN_IDENTITY too"
fi

# What `file` says of a path (no pipe into grep -q: with pipefail an early exit could read as "no").
describe() {
  file -b "$1" 2>/dev/null || true
}

# Sign the bundle from the inside out (Apple discourages `codesign --deep` for signing): every
# loose Mach-O file, then nested bundles deepest first, then the console executable, then the app.
# Entitlements go on executables only; libraries inherit them from the process that loads them.
sign_app() {
  local identity=$1
  local -a base=(--force --sign "$identity")
  local -a exe_opts=()
  if [ "$identity" != "-" ]; then
    base+=(--timestamp --options runtime)
    exe_opts=(--entitlements "$ENTITLEMENTS")
  fi
  if [ -n "${MACOS_KEYCHAIN:-}" ]; then
    base+=(--keychain "$MACOS_KEYCHAIN")
  fi

  local f kind count=0
  while IFS= read -r -d '' f; do
    kind=$(describe "$f")
    case "$kind" in
      Mach-O*executable*) codesign "${base[@]}" ${exe_opts[@]+"${exe_opts[@]}"} "$f" ;;
      Mach-O*) codesign "${base[@]}" "$f" ;;
      *) continue ;;
    esac
    count=$((count + 1))
  done < <(find "$APP/Contents" -type f ! -path "$APP/Contents/MacOS/*" -print0)
  log "signed $count Mach-O files"

  local depth bundle
  while IFS=$'\t' read -r depth bundle; do
    [ -n "$bundle" ] || continue
    codesign "${base[@]}" "$bundle"
    log "signed nested bundle ${bundle#"$APP/"} (depth $depth)"
  done < <(find "$APP/Contents" -type d \( -name '*.framework' -o -name '*.app' -o -name '*.bundle' \
    -o -name '*.xpc' \) -print | awk -F/ '{ print NF "\t" $0 }' | sort -rn)

  codesign "${base[@]}" ${exe_opts[@]+"${exe_opts[@]}"} --identifier "$BUNDLE_ID.cli" \
    "$APP/Contents/MacOS/$CLI_EXE"
  codesign "${base[@]}" ${exe_opts[@]+"${exe_opts[@]}"} "$APP"
}

verify_app() {
  codesign --verify --deep --strict --verbose=2 "$APP"
}

notarize() {
  local target=$1 result status id
  result="$WORK/notary-$(basename "$target").json"
  log "notarising $(basename "$target") (this waits for Apple's answer)"
  # notarytool exits 0 even when the submission is Invalid: read the status it reports.
  xcrun notarytool submit "$target" "${NOTARY_ARGS[@]}" --wait --output-format json >"$result"
  status=$(plutil -extract status raw -o - "$result" 2>/dev/null || echo unknown)
  id=$(plutil -extract id raw -o - "$result" 2>/dev/null || echo "")
  if [ "$status" != "Accepted" ]; then
    cat "$result" >&2
    if [ -n "$id" ]; then
      xcrun notarytool log "$id" "${NOTARY_ARGS[@]}" >&2 || true
    fi
    die "notarisation of $(basename "$target") ended as: $status"
  fi
}

# 1. The app's signature.
if [ -n "$IDENTITY" ]; then
  log "signing $APP with $IDENTITY (hardened runtime)"
  sign_app "$IDENTITY"
  verify_app
elif verify_app; then
  log "keeping PyInstaller's ad-hoc signature"
else
  log "PyInstaller's signature does not verify: re-signing ad-hoc inside-out"
  sign_app "-"
  verify_app
fi
codesign --display --verbose=2 "$APP" 2>&1 | grep -E '^(Identifier|Format|Authority|Signature|TeamIdentifier|Runtime)' >&2 || true

# 2. Notarise and staple the app itself, so it passes Gatekeeper once copied out of the image.
if [ ${#NOTARY_ARGS[@]} -gt 0 ]; then
  ditto -c -k --keepParent "$APP" "$WORK/$APP_NAME.zip"
  notarize "$WORK/$APP_NAME.zip"
  xcrun stapler staple "$APP"
  xcrun stapler validate "$APP"
  spctl --assess --type execute --verbose=2 "$APP"
fi

# 3. The disk image: the app and an Applications link to drag it onto.
rm -f "$DMG"
BUILDER=${DMG_BUILDER:-}
if [ -z "$BUILDER" ]; then
  if command -v dmgbuild >/dev/null 2>&1; then BUILDER=dmgbuild; else BUILDER=hdiutil; fi
fi
log "building $(basename "$DMG") with $BUILDER"
case "$BUILDER" in
  dmgbuild)
    dmgbuild -s "$HERE/dmg_settings.py" -D "app=$APP" -D "icon=$VOLUME_ICON" "$APP_NAME" "$DMG"
    ;;
  hdiutil)
    mkdir "$WORK/image"
    ditto "$APP" "$WORK/image/$(basename "$APP")"
    ln -s /Applications "$WORK/image/Applications"
    hdiutil create -volname "$APP_NAME" -srcfolder "$WORK/image" -ov -format UDZO "$DMG"
    ;;
  *) die "DMG_BUILDER must be dmgbuild or hdiutil, not $BUILDER" ;;
esac
hdiutil verify "$DMG"

# 4. Sign, notarise and staple the image.
if [ -n "$IDENTITY" ]; then
  keychain_args=()
  if [ -n "${MACOS_KEYCHAIN:-}" ]; then keychain_args=(--keychain "$MACOS_KEYCHAIN"); fi
  codesign --force --timestamp --sign "$IDENTITY" ${keychain_args[@]+"${keychain_args[@]}"} "$DMG"
  codesign --verify --verbose=2 "$DMG"
fi
if [ ${#NOTARY_ARGS[@]} -gt 0 ]; then
  notarize "$DMG"
  xcrun stapler staple "$DMG"
  xcrun stapler validate "$DMG"
fi

echo "$DMG"

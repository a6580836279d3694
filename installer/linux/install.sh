#!/usr/bin/env bash
# Install tailnet-agent for the current user, from the unpacked release tarball:
#
#   ./install.sh               copy to ~/.local/opt/tailnet-agent, add the menu entry, the icon
#                              and ~/.local/bin/tailnet-agent{,-cli} links
#   ./install.sh --autostart   the same, then start it at login (tailnet-agent-cli autostart enable)
#   ./install.sh --uninstall   remove all of that again (your topology, history and logs in
#                              ~/.config/tailnet-agent and ~/.local/state/tailnet-agent stay)
#
# No root needed; it writes only under $HOME (XDG_DATA_HOME is respected).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APP="tailnet-agent"
DEST="$HOME/.local/opt/$APP"
BIN="$HOME/.local/bin"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
MENU="$DATA/applications/$APP.desktop"
ICONS="$DATA/icons/hicolor"

refresh_menus() {
  if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$DATA/applications" || true
  fi
  if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$ICONS/index.theme" ]; then
    gtk-update-icon-cache -q -t "$ICONS" || true
  fi
}

uninstall() {
  if [ -x "$DEST/$APP-cli" ]; then
    "$DEST/$APP-cli" autostart disable >/dev/null 2>&1 || true
  fi
  rm -rf "$DEST"
  rm -f "$MENU" "$BIN/$APP" "$BIN/$APP-cli"
  find "$ICONS" -path "*/apps/$APP.png" -delete 2>/dev/null || true
  refresh_menus
  echo "Removed $APP. Your settings and history are kept in ~/.config/$APP and ~/.local/state/$APP."
}

install() {
  [ -x "$HERE/$APP/$APP" ] || { echo "install.sh: $HERE/$APP/$APP is missing" >&2; exit 1; }
  mkdir -p "$(dirname "$DEST")" "$BIN" "$(dirname "$MENU")"
  rm -rf "$DEST.new"
  cp -a "$HERE/$APP" "$DEST.new"
  chmod -R go-w "$DEST.new"  # what runs at every login: writable by this user alone
  rm -rf "$DEST"
  mv "$DEST.new" "$DEST"
  ln -sfn "$DEST/$APP" "$BIN/$APP"
  ln -sfn "$DEST/$APP-cli" "$BIN/$APP-cli"

  # Icons: icons/png/tailnet-agent-<N>.png for each size shipped, else the 256 px one.
  local png size found=0
  for png in "$HERE"/icons/png/"$APP"-*.png; do
    [ -f "$png" ] || continue
    size=${png##*-}
    size=${size%.png}
    mkdir -p "$ICONS/${size}x${size}/apps"
    cp "$png" "$ICONS/${size}x${size}/apps/$APP.png"
    found=1
  done
  if [ "$found" -eq 0 ]; then
    mkdir -p "$ICONS/256x256/apps"
    cp "$HERE/icons/$APP.png" "$ICONS/256x256/apps/$APP.png"
  fi

  # The menu entry, with an absolute Exec= (a menu does not search ~/.local/bin). Exec= is
  # quoted for spaces; characters that need escaping inside it are refused instead.
  case "$DEST" in
    *[\"\`\$\\%]*)
      echo "install.sh: $DEST has a character Exec= cannot hold plainly; menu entry skipped" >&2
      return 0
      ;;
  esac
  local sed_dest
  sed_dest=$(printf '%s' "$DEST" | sed -e 's/[|&]/\\&/g')
  sed -e "s|^Exec=.*|Exec=\"$sed_dest/$APP\"|" -e "s|^TryExec=.*|TryExec=$sed_dest/$APP|" \
    "$HERE/$APP.desktop" >"$MENU.tmp"
  mv "$MENU.tmp" "$MENU"
  refresh_menus
  echo "Installed $APP in $DEST (menu entry: $MENU)."
}

case "${1:-}" in
  "") install ;;
  --autostart)
    install
    "$DEST/$APP-cli" autostart enable
    ;;
  --uninstall) uninstall ;;
  -h | --help) sed -n '2,10p' "$0" ;;
  *)
    echo "usage: $0 [--autostart | --uninstall]" >&2
    exit 2
    ;;
esac

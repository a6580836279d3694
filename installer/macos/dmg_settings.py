# dmgbuild settings for the tailnet-agent disk image (installer/macos/build_dmg.sh runs it):
#   dmgbuild -s installer/macos/dmg_settings.py -D app=dist/tailnet-agent.app \
#       -D icon=icons/tailnet-agent.icns tailnet-agent dist/tailnet-agent-X.Y.Z-macos-ARCH.dmg
# dmgbuild executes this file with its options as globals; `defines` holds the -D values.
# It writes the Finder layout (.DS_Store) itself, so no Finder/AppleScript is needed (CI-safe).
# ruff: noqa: F821
import os.path

application = defines.get("app", "dist/tailnet-agent.app")
appname = os.path.basename(application)

format = "UDZO"  # zlib-compressed, read-only: opens on every supported macOS
filesystem = "HFS+"
size = None  # computed from the contents

files = [application]
symlinks = {"Applications": "/Applications"}  # drag the app onto it to install
icon = defines.get("icon") or None  # the volume's icon (the app icon, .icns)

default_view = "icon-view"
show_status_bar = False
show_tab_view = False
show_toolbar = False
show_pathbar = False
show_sidebar = False
window_rect = ((200, 160), (560, 320))
icon_size = 112
text_size = 13
icon_locations = {
    appname: (140, 150),
    "Applications": (420, 150),
}

"""The desktop edges: what a person sees and clicks on their own machine.

    tray        the pystray icon and its menu (a TrayView drawn, menu clicks handed back)
    icons       the tray's and the app's icons, drawn with Pillow
    notify      desktop notifications (D-Bus, notify-send, plyer, desktop-notifier, osascript)
    actions     open in browser, open a file or folder, copy to the clipboard
    autostart   start at login (HKCU Run, a LaunchAgent, an XDG autostart entry)

Only the tray and icons need the GUI libraries (pystray, Pillow): they come with the
`desktop` extra, and `check` and `run --headless` never import them.
"""
